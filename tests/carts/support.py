"""Helpers for the cart tests: products for sale (made, published and stocked through the
catalog and inventory APIs), and the cart API's requests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Shop

V1 = "/api/v1/carts"
ALIAS = "/api/carts"


async def product_for_sale(
    shop: Shop,
    admin: dict[str, str],
    *,
    name: str = "Men's T-Shirt",
    price: float = 499.0,
    variants: list[dict[str, Any]] | None = None,
    stock: int | list[int] = 10,
    publish: bool = True,
) -> dict[str, Any]:
    """A published product (by default one variant) with `stock` units of each variant (or
    the list's, variant by variant); returns its ProductDTO."""
    body: dict[str, Any] = {"name": name, "price": price}
    body["variants"] = variants if variants is not None else [{"attributes": {"color": "red", "size": "M"}}]
    response = await shop.client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    if publish:
        response = await shop.client.post(f"/api/v1/products/{product['productId']}/publish", headers=admin)
        assert response.status_code == 200, response.text
    counts = stock if isinstance(stock, list) else [stock] * max(len(product["variants"]), 1)
    targets = [v["variantId"] for v in product["variants"]] or [None]
    for variant_id, units in zip(targets, counts, strict=True):
        if units:
            adjust: dict[str, Any] = {"productId": product["productId"], "delta": units, "reason": "Opening stock"}
            if variant_id:
                adjust["variantId"] = variant_id
            response = await shop.client.post("/api/v1/inventory/adjust", json=adjust, headers=admin)
            assert response.status_code == 200, response.text
    return product


def line(product: dict[str, Any], quantity: int, variant: int | None = 0) -> dict[str, Any]:
    """A POST /carts/items body for the product's `variant`-th variant (None: no variantId)."""
    body: dict[str, Any] = {"productId": product["productId"], "quantity": quantity}
    if variant is not None:
        body["variantId"] = product["variants"][variant]["variantId"]
    return body


async def set_item(shop: Shop, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return await shop.client.post(f"{V1}/items", json=body, headers=headers or {})


async def cart(shop: Shop, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await shop.client.get(V1, headers=headers or {})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer
