"""Domain errors of search."""

from __future__ import annotations

from tienda.platform.errors import BadRequest


class UnknownCategory(BadRequest):
    code = "UNKNOWN_CATEGORY"
    message = "No such category"
