"""DTOs of inventory (SEED.md 5.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from tienda.platform.schemas import ReadSchema, Schema, examples

ProductRef = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^p_[A-Za-z0-9_-]+$")]
VariantRef = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^v_[A-Za-z0-9_-]+$")]
OrderRef = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ReservationStatus = Literal["RESERVED", "COMMITTED", "RELEASED", "EXPIRED", "RETURNED"]


class VariantStock(ReadSchema):
    variant_id: str | None = Field(description="null: stock kept for the product as a whole.")
    stock_count: int
    reserved: int
    available: int
    threshold: int
    updated_at: datetime


class ProductStock(ReadSchema):
    """SEED.md's `{productId, variantId, stockCount, reserved}`, per variant, with totals."""

    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "productId": "p_1",
                "stockCount": 50,
                "reserved": 2,
                "available": 48,
                "variants": [
                    {
                        "variantId": "v_1",
                        "stockCount": 50,
                        "reserved": 2,
                        "available": 48,
                        "threshold": 5,
                        "updatedAt": "2026-11-25T18:05:07Z",
                    }
                ],
            }
        )
    }

    product_id: str
    stock_count: int
    reserved: int
    available: int
    variants: list[VariantStock]


class ItemIn(Schema):
    product_id: ProductRef
    variant_id: VariantRef | None = None
    quantity: int = Field(ge=1, le=10_000)


class ReserveRequest(Schema):
    """All or nothing: every item is reserved, or none is (409 names the short ones)."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"orderId": "ord_20261125_0001", "items": [{"productId": "p_1", "variantId": "v_1", "quantity": 2}]}
        )
    }

    order_id: OrderRef
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=100)]
    ttl_seconds: int | None = Field(default=None, ge=1, le=24 * 3600, description="Default: 15 minutes (setting).")


class ReleaseRequest(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"orderId": "ord_20261125_0001"},
            {"orderId": "ord_20261125_0001", "items": [{"productId": "p_1", "variantId": "v_1", "quantity": 1}]},
        )
    }

    order_id: OrderRef
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="Release only these units; default: everything the order holds."
    )


class CommitRequest(Schema):
    model_config = Schema.model_config | {"json_schema_extra": examples({"orderId": "ord_20261125_0001"})}

    order_id: OrderRef


class AdjustRequest(Schema):
    """A restock (positive) or a correction (negative), with the reason kept in the audit trail."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"productId": "p_1", "variantId": "v_1", "delta": 50, "reason": "Restock from supplier"},
            {"productId": "p_1", "delta": -2, "reason": "Damaged in the warehouse", "threshold": 5},
        )
    }

    product_id: ProductRef
    variant_id: VariantRef | None = None
    delta: int = Field(ge=-1_000_000, le=1_000_000)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    threshold: int | None = Field(default=None, ge=0, le=1_000_000, description="Low-stock threshold to set.")

    @model_validator(mode="after")
    def _changes_something(self) -> AdjustRequest:
        if self.delta == 0 and self.threshold is None:
            raise ValueError("delta must not be 0 unless a threshold is set")
        return self


class ReservedItem(ReadSchema):
    product_id: str
    variant_id: str | None
    quantity: int
    status: ReservationStatus


class ReservationRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "orderId": "ord_20261125_0001",
                "status": "RESERVED",
                "expiresAt": "2026-11-25T18:20:07Z",
                "items": [{"productId": "p_1", "variantId": "v_1", "quantity": 2, "status": "RESERVED"}],
            }
        )
    }

    order_id: str
    status: ReservationStatus = Field(description="RESERVED while any item is held, else the items' end state.")
    expires_at: datetime
    items: list[ReservedItem]
