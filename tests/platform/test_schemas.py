"""`ReadSchema.trusted`: the answer `model_construct` would make, or a TypeError."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tienda.carts.domain import LineStatus
from tienda.carts.schemas import CartLineRead
from tienda.platform.schemas import ReadSchema


def a_line(**changes: Any) -> dict[str, Any]:
    return {
        "item_id": "ci_1",
        "product_id": "p_1",
        "variant_id": None,
        "sku": "MUG-1",
        "name": "Mug",
        "attributes": {"color": "red"},
        "image": None,
        "quantity": 3,
        "unit_price": Decimal("250.50"),
        "line_total": Decimal("751.50"),
        "available_quantity": 7,
        "available": True,
        "status": LineStatus.AVAILABLE,
        "added_at": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
    } | changes


def test_trusted_makes_what_model_construct_makes() -> None:
    trusted = CartLineRead.trusted(**a_line())
    constructed = CartLineRead.model_construct(**a_line())

    assert trusted == constructed
    assert trusted.model_fields_set == constructed.model_fields_set
    assert trusted.model_dump_json(by_alias=True) == constructed.model_dump_json(by_alias=True)
    assert '"lineTotal":751.5' in trusted.model_dump_json(by_alias=True)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({k: v for k, v in a_line().items() if k != "sku"}, "missing {'sku'}"),
        (a_line(colour="red"), "unknown {'colour'}"),
        ({k: v for k, v in a_line().items() if k != "line_total"} | {"lineTotal": Decimal(1)}, "'line_total'"),
    ],
    ids=["missing", "unknown", "by alias"],
)
def test_a_field_left_out_or_unknown_is_a_type_error(values: dict[str, Any], named: str) -> None:
    with pytest.raises(TypeError, match=re.escape(named)):
        CartLineRead.trusted(**values)


class Finished(ReadSchema):
    """A model with a `model_post_init`, which `trusted` must not skip."""

    name: str
    shown: str = ""

    def model_post_init(self, context: Any, /) -> None:
        self.shown = self.name.upper()


def test_trusted_runs_a_models_post_init_as_model_construct_does() -> None:
    assert Finished.trusted(name="mug", shown="").shown == "MUG"
    assert Finished.trusted(name="mug", shown="") == Finished.model_construct(name="mug", shown="")
