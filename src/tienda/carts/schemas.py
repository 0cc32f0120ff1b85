"""DTOs of carts (SEED.md 5.3), camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from tienda.carts.domain import LineStatus
from tienda.platform.money import Amount
from tienda.platform.schemas import ReadSchema, Schema, examples


class CartItemIn(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples({"productId": "p_4m8k2x9q7w3e", "variantId": "v_8d2k4m6n8p1q", "quantity": 2})
    }

    product_id: Annotated[str, Field(min_length=1, max_length=64)]
    variant_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Required when the product comes in variants."
    )
    quantity: int = Field(
        ge=0, le=1_000_000, description="The line's new quantity (not an increment); 0 removes the line. At most 99."
    )


class CartMergeIn(Schema):
    model_config = Schema.model_config | {"json_schema_extra": examples({"cartToken": "eyJhbGciOiJIUzI1NiJ9..."})}

    cart_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, description="The guest's cart token; without it, the request's X-Cart-Token header."
    )


class CartLineRead(ReadSchema):
    item_id: str
    product_id: str
    variant_id: str | None
    sku: str | None
    name: str | None = Field(description="None when the product no longer exists.")
    attributes: dict[str, str]
    image: str | None
    quantity: int
    unit_price: Amount | None = Field(description="The catalog's price now; None when the product is gone.")
    line_total: Amount
    available_quantity: int = Field(description="Units in stock now.")
    available: bool = Field(description="True when the line can be bought as it is (status AVAILABLE).")
    status: LineStatus
    added_at: datetime


class CartRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "cartId": "c_7h3k9m2p4q6r",
                "userId": "u_123abc456def",
                "items": [
                    {
                        "itemId": "ci_5t7y9u2i4o6p",
                        "productId": "p_4m8k2x9q7w3e",
                        "variantId": "v_8d2k4m6n8p1q",
                        "sku": "TSHIRT-RED-M",
                        "name": "Men's T-Shirt",
                        "attributes": {"color": "red", "size": "M"},
                        "image": "https://cdn.example.com/p1.jpg",
                        "quantity": 2,
                        "unitPrice": 499.0,
                        "lineTotal": 998.0,
                        "availableQuantity": 37,
                        "available": True,
                        "status": "AVAILABLE",
                        "addedAt": "2026-11-25T10:00:00Z",
                    }
                ],
                "itemCount": 2,
                "totalAmount": 998.0,
                "currency": "INR",
                "hasUnavailableItems": False,
            }
        )
    }

    cart_id: str | None = Field(description="None until the first line is added.")
    user_id: str | None = Field(description="None for a guest's cart.")
    items: list[CartLineRead]
    item_count: int = Field(description="Units over every line.")
    total_amount: Amount = Field(
        description="What the available lines cost at today's prices, before coupons, tax and shipping; "
        "flagged lines are shown but not counted."
    )
    currency: str
    has_unavailable_items: bool
