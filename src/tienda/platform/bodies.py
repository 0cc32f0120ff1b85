"""Reading a request body by hand, for a route that takes more than one content type (FastAPI
reads a declared body one way only). The answers match a declared body's: 400
`MALFORMED_JSON` or `VALIDATION_FAILED` with `body.<field>` details, and 415 for a type the
route does not take."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from tienda.platform.errors import BadRequest

JSON = "application/json"
MULTIPART = "multipart/form-data"

M = TypeVar("M", bound=BaseModel)


class MalformedMultipart(BadRequest):
    code = "MALFORMED_MULTIPART"
    message = "Malformed multipart body"


def media_type(request: Request) -> str:
    """The request's media type, lower-cased and without parameters; JSON types
    (`application/*+json`) read as `application/json`; "" when there is none."""
    value = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if value.startswith("application/") and value.endswith("+json"):
        return JSON
    return value


def _body_errors(errors: list[Any]) -> RequestValidationError:
    return RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in errors])


def field_error(field: str, kind: str, message: str) -> RequestValidationError:
    """A 400 naming `body.<field>`, for a check a model cannot make (e.g. a form's file)."""
    return _body_errors([{"type": kind, "loc": (field,), "msg": message, "input": None}])


async def json_body(request: Request, model: type[M]) -> M:
    """The body read as JSON and validated as `model`."""
    try:
        raw = await request.body()
    except ClientDisconnect as exc:
        raise BadRequest("The client went away before sending the whole body") from exc
    if not raw:
        raise _body_errors([{"type": "missing", "loc": (), "msg": "Field required", "input": None}])
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _body_errors([{"type": "json_invalid", "loc": (), "msg": "JSON decode error", "input": {}}]) from exc
    return validate_body(model, data)


def validate_body(model: type[M], data: object) -> M:
    """`data` validated as `model`; errors name their `body.<field>`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _body_errors(list(exc.errors(include_url=False))) from exc


async def form_body(request: Request, *, max_files: int, max_fields: int, max_part_size: int) -> FormData:
    """The multipart (or url-encoded) form; the caller closes it (`await form.close()`).
    `max_part_size` bounds each field that is not a file; files are bounded by the body limit."""
    try:
        return await request.form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
    except StarletteHTTPException as exc:
        if exc.status_code != 400:  # a 413 from the body limit stays one
            raise
        raise MalformedMultipart(str(exc.detail)) from exc
    except ClientDisconnect as exc:
        raise BadRequest("The client went away before sending the whole body") from exc
