"""Helpers for the order tests: buyers with an address and a cart, placing orders through the
API, orders stopped midway (through the checkout's own steps), and what each module stores."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from tests.carts.support import ENVELOPE_FIELDS, line, product_for_sale, set_item
from tests.conftest import Shop, shop_settings
from tienda.app import ALL_MODULES, create_app
from tienda.orders.models import Coupon, CouponRedemption, Order, OrderItem
from tienda.orders.schemas import OrderCreate
from tienda.orders.wiring import checkout
from tienda.platform.runtime import Platform

ORDERS = "/api/v1/orders"
COUPONS = "/api/v1/coupons"
HOME = {
    "label": "home",
    "line1": "12 MG Road",
    "line2": "Flat 4B",
    "city": "Bengaluru",
    "state": "KA",
    "postalCode": "560001",
    "country": "IN",
    "phone": "+919876543210",
}
OFFICE = {
    "label": "office",
    "line1": "1 Residency Road",
    "city": "Bengaluru",
    "postalCode": "560025",
    "country": "IN",
}
ORDER_FIELDS = {
    "orderId",
    "userId",
    "status",
    "paymentStatus",
    "paymentMethod",
    "paymentId",
    "paymentUrl",
    "currency",
    "items",
    "subtotalAmount",
    "discountAmount",
    "taxAmount",
    "shippingAmount",
    "totalAmount",
    "refundedAmount",
    "couponCode",
    "shippingAddress",
    "billingAddress",
    "trackingNumber",
    "failureReason",
    "expiresAt",
    "createdAt",
    "updatedAt",
}
ITEM_FIELDS = {
    "productId",
    "variantId",
    "sku",
    "name",
    "attributes",
    "quantity",
    "unitPrice",
    "totalPrice",
    "discountAmount",
    "taxRate",
    "taxAmount",
}
ADDRESS_FIELDS = {"addressId", "label", "line1", "line2", "city", "state", "postalCode", "country", "phone"}


@asynccontextmanager
async def rebuilt(shop: Shop, **extra: Any) -> AsyncIterator[Shop]:
    """The shop on the same database and clock, built again with these settings on top."""
    assert shop.settings.database_url is not None
    settings = shop_settings(shop.data_dir, shop.settings.database_url, **extra)
    platform = Platform.build(settings, ALL_MODULES, clock=shop.clock)
    transport = httpx.ASGITransport(app=create_app(settings, platform=platform), client=("203.0.113.9", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield Shop(client=client, platform=platform, clock=shop.clock, data_dir=shop.data_dir, settings=settings)
    finally:
        await platform.close()


@dataclass
class Buyer:
    user_id: str
    auth: dict[str, str]
    address_id: str
    email: str = "asha@example.com"

    def body(self, **extra: Any) -> dict[str, Any]:
        """An OrderCreateDTO: COD to the buyer's address, with `extra` on top."""
        return {"shippingAddressId": self.address_id, "paymentMethod": "COD", **extra}


async def add_address(shop: Shop, user_id: str, auth: dict[str, str], fields: dict[str, Any] | None = None) -> str:
    response = await shop.client.post(f"/api/v1/users/{user_id}/addresses", json=fields or HOME, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["addressId"])


async def buyer(shop: Shop, email: str = "asha@example.com") -> Buyer:
    """A signed-in user with one address (HOME) and an empty cart."""
    user_id, auth = await shop.user(email)
    return Buyer(user_id, auth, await add_address(shop, user_id, auth), email)


async def relogin(shop: Shop, *buyers: Buyer) -> None:
    """Fresh access tokens, after the clock moved past the old ones' life."""
    for who in buyers:
        who.auth = {"Authorization": f"Bearer {(await shop.login(who.email))['accessToken']}"}


async def fill(shop: Shop, who: Buyer, *lines: dict[str, Any]) -> None:
    """Puts these cart lines (`tests.carts.support.line` bodies) in the buyer's cart."""
    for body in lines:
        response = await set_item(shop, body, who.auth)
        assert response.status_code == 200, response.text


async def place(shop: Shop, who: Buyer, key: str | None = None, **extra: Any) -> httpx.Response:
    headers = who.auth | ({"Idempotency-Key": key} if key else {})
    return await shop.client.post(ORDERS, json=who.body(**extra), headers=headers)


async def placed(shop: Shop, who: Buyer, **extra: Any) -> dict[str, Any]:
    """A COD order placed (201), as answered."""
    response = await place(shop, who, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def order_for(
    shop: Shop, admin: dict[str, str], who: Buyer, *, price: float = 499.0, **extra: Any
) -> dict[str, Any]:
    """A new product (5 in stock) bought once by the buyer: the confirmed order."""
    product = await product_for_sale(shop, admin, price=price, stock=5)
    await fill(shop, who, line(product, 1))
    return await placed(shop, who, **extra)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error envelope with this status and code; returns the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) - {"details"} == ENVELOPE_FIELDS, body
    assert (body["status"], body["code"], body["path"]) == (status, code, response.request.url.path), body
    assert body["message"]
    return body


def order_id_pattern(shop: Shop) -> re.Pattern[str]:
    return re.compile(rf"^ord_{shop.clock.now():%Y%m%d}_\d{{4}}$")


async def stalled(shop: Shop, who: Buyer, *, coupon_code: str | None = None, reserve: bool = False) -> str:
    """An order stored CREATED at saga step PLACED from the buyer's cart, as if the process
    stopped right after storing it: nothing reserved, the cart untouched; with `reserve`, it
    stopped right after the reservation (still PLACED: the stock held, the cart untouched). Its id."""
    flow = checkout(shop.platform)
    body = OrderCreate(shipping_address_id=who.address_id, payment_method="COD", coupon_code=coupon_code)
    cart = await flow.carts.cart_of(who.user_id)
    assert cart is not None
    address = await flow._address(who.user_id, who.address_id, "body.shippingAddressId")
    order = await flow._store(
        user_id=who.user_id,
        body=body,
        lines=await flow._priced_lines(cart.lines),
        shipping_address=address,
        billing_address=address,
        idempotency_key=None,
        digest="stalled",
    )
    if reserve:
        await flow._reserve(order)
    return order.order_id


# -- what is stored ----------------------------------------------------------------------------


async def orders_stored(shop: Shop) -> list[dict[str, Any]]:
    """Every order row, oldest first, read through the typed table."""
    async with shop.platform.db("orders").engine.connect() as conn:
        rows = await conn.execute(select(Order.__table__).order_by(Order.id))
        return [dict(r._mapping) for r in rows]


async def order_stored(shop: Shop, order_id: str) -> dict[str, Any]:
    found = [o for o in await orders_stored(shop) if o["order_id"] == order_id]
    assert len(found) == 1, order_id
    return found[0]


async def items_stored(shop: Shop) -> list[dict[str, Any]]:
    async with shop.platform.db("orders").engine.connect() as conn:
        rows = await conn.execute(select(OrderItem.__table__).order_by(OrderItem.id))
        return [dict(r._mapping) for r in rows]


async def coupon_state(shop: Shop, code: str) -> tuple[int, list[tuple[str, str]]]:
    """(used_count, [(user_id, order_id) of its redemptions]) of a coupon."""
    async with shop.platform.db("orders").engine.connect() as conn:
        coupon = (await conn.execute(select(Coupon.__table__).where(Coupon.code == code))).one()
        rows = await conn.execute(
            select(CouponRedemption.user_id, CouponRedemption.order_id)
            .where(CouponRedemption.coupon_id == coupon.id)
            .order_by(CouponRedemption.id)
        )
        return int(coupon.used_count), [(r.user_id, r.order_id) for r in rows]


async def stock(shop: Shop, product: dict[str, Any]) -> tuple[int, int, int]:
    """(stockCount, reserved, available) of the product, through the API."""
    response = await shop.client.get(f"/api/v1/inventory/{product['productId']}")
    assert response.status_code == 200, response.text
    body = response.json()
    return body["stockCount"], body["reserved"], body["available"]


async def cart_lines(shop: Shop, who: Buyer) -> list[tuple[str, str | None, int]]:
    """(productId, variantId, quantity) of the buyer's cart, through the API."""
    response = await shop.client.get("/api/v1/carts", headers=who.auth)
    assert response.status_code == 200, response.text
    return [(i["productId"], i["variantId"], i["quantity"]) for i in response.json()["items"]]


async def create_coupon(shop: Shop, admin: dict[str, str], **terms: Any) -> dict[str, Any]:
    body = {"code": "SAVE50", "discountType": "FIXED", "value": 50, **terms}
    response = await shop.client.post(COUPONS, json=body, headers=admin)
    assert response.status_code == 201, response.text
    coupon: dict[str, Any] = response.json()
    return coupon


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def world(shop: Shop, who: Buyer | None = None, *products: dict[str, Any]) -> dict[str, Any]:
    """Everything a refused request must leave as it was: every order, item, coupon and
    redemption row, the orders outbox, the products' stock and the buyer's cart."""
    outbox = shop.platform.db("orders").outbox.outbox
    async with shop.platform.db("orders").engine.connect() as conn:
        coupons = [dict(r._mapping) for r in await conn.execute(select(Coupon.__table__).order_by(Coupon.id))]
        redemptions = [
            dict(r._mapping)
            for r in await conn.execute(select(CouponRedemption.__table__).order_by(CouponRedemption.id))
        ]
        events = [tuple(r) for r in await conn.execute(select(outbox.c.id, outbox.c.type).order_by(outbox.c.id))]
    return {
        "orders": await orders_stored(shop),
        "items": await items_stored(shop),
        "coupons": coupons,
        "redemptions": redemptions,
        "events": events,
        "stock": [await stock(shop, p) for p in products],
        "cart": await cart_lines(shop, who) if who else None,
    }
