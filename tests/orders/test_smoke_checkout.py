from __future__ import annotations

from tests.carts.support import line, product_for_sale, set_item
from tests.conftest import Shop
from tienda.orders.seed import seed_coupons


async def test_cod_checkout_from_cart_with_newuser10(shop: Shop) -> None:
    _, admin = await shop.admin()
    await seed_coupons(shop.platform.db("orders"), now=shop.clock.now())
    shirt = await product_for_sale(shop, admin, price=499.0, stock=5)
    user_id, user = await shop.user()
    address = await shop.client.post(
        f"/api/v1/users/{user_id}/addresses",
        json={"line1": "12 MG Road", "city": "Bengaluru", "postalCode": "560001", "country": "IN"},
        headers=user,
    )
    assert address.status_code == 201, address.text
    assert (await set_item(shop, line(shirt, 2), user)).status_code == 200
    response = await shop.client.post(
        "/api/v1/orders",
        json={"shippingAddressId": address.json()["addressId"], "paymentMethod": "COD", "couponCode": "newuser10"},
        headers=user | {"Idempotency-Key": "k1"},
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "CONFIRMED"
    assert (order["subtotalAmount"], order["discountAmount"], order["taxAmount"], order["shippingAmount"]) == (
        998.0,
        99.8,
        161.68,
        49.0,
    )
    assert order["totalAmount"] == 1108.88
    stock = (await shop.client.get(f"/api/v1/inventory/{shirt['productId']}")).json()
    assert (stock["stockCount"], stock["reserved"], stock["available"]) == (3, 0, 3)
    assert (await shop.client.get("/api/v1/carts", headers=user)).json()["items"] == []
    again = await shop.client.post(
        "/api/v1/orders",
        json={"shippingAddressId": address.json()["addressId"], "paymentMethod": "COD", "couponCode": "newuser10"},
        headers=user | {"Idempotency-Key": "k1"},
    )
    assert again.status_code == 201
    assert again.json()["orderId"] == order["orderId"]
