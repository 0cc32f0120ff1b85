"""Money is `Decimal` quantised to 2 places, rounded half-up, and a JSON number on the wire."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer

CENT = Decimal("0.01")


def quantize(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _two_places(value: Decimal) -> Decimal:
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("at most 2 decimal places")
    return quantize(value)


Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, json_schema_extra={"type": "number"}),
    AfterValidator(_two_places),
    PlainSerializer(float, return_type=float, when_used="json"),
]
"""A non-negative amount of money with at most 2 decimals, e.g. 499.00."""


WireAmount = Annotated[
    Decimal,
    AfterValidator(quantize),
    PlainSerializer(float, return_type=float, when_used="json"),
]
"""An amount in a client protocol's dataclass: a JSON number between services, read back as a
2-place Decimal (any sign)."""
