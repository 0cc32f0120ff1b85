from __future__ import annotations

from tests.carts.support import cart, line, product_for_sale, set_item
from tests.conftest import Shop


async def test_guest_adds_then_merges_into_user_cart(shop: Shop) -> None:
    _, admin = await shop.admin()
    shirt = await product_for_sale(shop, admin, stock=5)
    mug = await product_for_sale(shop, admin, name="Mug", price=250.5, variants=[], stock=3)

    first = await set_item(shop, line(shirt, 2))
    assert first.status_code == 200, first.text
    token = first.headers["X-Cart-Token"]
    guest = {"X-Cart-Token": token}
    assert (await set_item(shop, line(mug, 2, None), guest)).status_code == 200
    seen = await cart(shop, guest)
    assert [(i["productId"], i["quantity"], i["unitPrice"]) for i in seen["items"]] == [
        (shirt["productId"], 2, 499.0),
        (mug["productId"], 2, 250.5),
    ]
    assert seen["totalAmount"] == 1499.0

    _, user = await shop.user()
    assert (await set_item(shop, line(shirt, 4), user)).status_code == 200
    merged = await shop.client.post("/api/v1/carts/merge", json={"cartToken": token}, headers=user)
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert [(i["productId"], i["quantity"]) for i in body["items"]] == [(shirt["productId"], 5), (mug["productId"], 2)]
    assert body["totalAmount"] == 5 * 499 + 501.0
    assert (await cart(shop, guest))["items"] == []
