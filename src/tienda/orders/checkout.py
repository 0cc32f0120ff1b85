"""Placing an order: the checkout saga of SEED.md 7.4, orchestrated here.

    1. read the caller's cart, today's prices (catalog), the addresses (users)
    2. store the order CREATED with its priced lines and the coupon's redemption   (saga PLACED)
    3. reserve the stock (inventory), all or nothing                               (saga RESERVED)
    4. COD: the order is CONFIRMED and the reserved units are sold                 (saga DONE)
       (online payment: initiate it and wait for the gateway's webhook — next step of #5)

Each step is its own transaction in its own module; the order's `saga_step` says how far it
got, so the worker (`resume`) finishes or compensates an order whose process stopped midway.
Every step is idempotent by the order id: running one twice changes nothing the second time.
A failure compensates what was done: a short reservation fails the order and gives the coupon
back; nothing else was taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.carts.client import CartLine, CartsClient
from tienda.catalog.client import CatalogClient, CategoryInfo, ProductInfo
from tienda.inventory.client import InventoryClient, StockLine, StockShort
from tienda.orders import events, repository
from tienda.orders.coupons import CouponService
from tienda.orders.domain import (
    LineIn,
    OrderStatus,
    Pricing,
    ShippingTerms,
    move,
    price,
    tax_rate,
)
from tienda.orders.errors import (
    AddressNotFound,
    CartEmpty,
    CartNotYours,
    IdempotencyKeyReused,
    ItemsUnavailable,
    OutOfStock,
    PaymentsUnavailable,
)
from tienda.orders.models import Order, OrderItem
from tienda.orders.reads import order_read
from tienda.orders.schemas import OrderCreate, OrderRead
from tienda.platform.clock import Clock
from tienda.platform.db import Database
from tienda.platform.errors import ErrorDetail
from tienda.users.client import AddressInfo, UsersClient

RESUMABLE = ("PLACED", "RESERVED", "SELL", "RELEASE")
"""Saga steps with work left that needs no one but us (a payment pending waits for its webhook)."""


@dataclass(frozen=True)
class PricedLine:
    line: CartLine
    product: ProductInfo
    unit_price: Any
    tax_rate: Any


@dataclass
class Checkout:
    db: Database
    carts: CartsClient
    catalog: CatalogClient
    inventory: InventoryClient
    users: UsersClient
    coupons: CouponService
    clock: Clock
    currency: str
    default_tax_rate: Any
    tax_rates: dict[str, Any]
    shipping: ShippingTerms
    reservation_ttl: timedelta

    async def place(self, *, user_id: str, body: OrderCreate, idempotency_key: str | None) -> OrderRead:
        digest = _digest(body)
        if idempotency_key is not None:
            replay = await self._replay(user_id, idempotency_key, digest)
            if replay is not None:
                return replay
        if body.user_id is not None and body.user_id != user_id:
            raise CartNotYours("The order is built from your own cart; userId must be yours")
        if body.payment_method != "COD":
            raise PaymentsUnavailable()
        cart = await self.carts.cart_of(user_id)
        if cart is None:
            raise CartEmpty()
        if body.cart_id is not None and body.cart_id != cart.cart_id:
            raise CartNotYours()
        shipping = await self._address(user_id, body.shipping_address_id, "body.shippingAddressId")
        billing = (
            await self._address(user_id, body.billing_address_id, "body.billingAddressId")
            if body.billing_address_id and body.billing_address_id != body.shipping_address_id
            else shipping
        )
        lines = await self._priced_lines(cart.lines)
        try:
            order = await self._store(
                user_id=user_id,
                body=body,
                lines=lines,
                shipping_address=shipping,
                billing_address=billing,
                idempotency_key=idempotency_key,
                digest=digest,
            )
        except IntegrityError:
            if idempotency_key is None:
                raise
            # The same Idempotency-Key, placed concurrently: the first one's order is the answer.
            replay = await self._replay(user_id, idempotency_key, digest)
            if replay is None:
                raise
            return replay
        return await self.advance(order.order_id)

    async def advance(self, order_id: str) -> OrderRead:
        """Carry the order on from where its saga stands, to its end or to a wait (payment)."""
        while True:
            async with self.db.reader() as uow:
                order = await repository.order(uow.session, order_id)
            assert order is not None
            if order.saga_step == "PLACED":
                await self._reserve(order)
            elif order.saga_step == "RESERVED":
                await self._take_out_of_cart(order)
                await self._confirm_cod(order)
            elif order.saga_step == "SELL":
                await self.inventory.commit(order.order_id)
                await self._step(order.order_id, "DONE")
            elif order.saga_step == "RELEASE":
                await self.inventory.release(order.order_id)
                await self._step(order.order_id, "DONE")
            else:
                return order_read(order)

    async def resume(self, *, stalled_after: timedelta = timedelta(seconds=30), limit: int = 100) -> int:
        """The worker's job: carry on orders whose checkout stopped midway (a crash, a restart)
        and has not moved for `stalled_after`. How many it moved on."""
        async with self.db.reader() as uow:
            stalled = await repository.unfinished(
                uow.session, steps=RESUMABLE, before=self.clock.now() - stalled_after, limit=limit
            )
        for order_id in stalled:
            with contextlib.suppress(OutOfStock):  # then the order is FAILED, as it should be
                await self.advance(order_id)
        return len(stalled)

    # -- steps ----------------------------------------------------------------------------

    async def _reserve(self, order: Order) -> None:
        lines = [StockLine(i.product_id, i.variant_id, i.quantity) for i in order.items]
        try:
            expires_at = await self.inventory.reserve(order.order_id, lines, ttl=self.reservation_ttl)
        except StockShort as short:
            await self._fail(order.order_id, "INSUFFICIENT_STOCK", step="DONE")
            raise OutOfStock(details=[ErrorDetail(field=s.field, message=s.message) for s in short.lines]) from short
        async with self.db.uow() as uow:
            row = await repository.order(uow.session, order.order_id, for_update=True)
            assert row is not None
            if row.saga_step == "PLACED":
                row.saga_step, row.expires_at, row.updated_at = "RESERVED", expires_at, self.clock.now()
                await uow.commit()

    async def _take_out_of_cart(self, order: Order) -> None:
        await self.carts.remove_lines(
            order.user_id, [CartLine(i.product_id, i.variant_id, i.quantity) for i in order.items]
        )

    async def _confirm_cod(self, order: Order) -> None:
        """Cash on delivery needs no gateway: the order is confirmed and its units sold now."""
        async with self.db.uow() as uow:
            row = await repository.order(uow.session, order.order_id, for_update=True)
            assert row is not None
            if row.saga_step != "RESERVED":
                return
            now = self.clock.now()
            row.status = move(OrderStatus(row.status), OrderStatus.CONFIRMED)
            row.payment_status, row.saga_step, row.updated_at = "COD_PENDING", "SELL", now
            await uow.publish(events.ORDER_CONFIRMED, events.order_payload(row), at=now)
            await uow.commit()

    async def _fail(self, order_id: str, reason: str, *, step: str) -> None:
        """The order FAILED: its coupon is given back; `step` says what is left to undo."""
        async with self.db.uow() as uow:
            row = await repository.order(uow.session, order_id, for_update=True)
            assert row is not None
            if row.status != OrderStatus.CREATED:
                return
            now = self.clock.now()
            row.status = move(OrderStatus.CREATED, OrderStatus.FAILED)
            row.payment_status = "FAILED" if row.payment_method != "COD" else "NOT_CHARGED"
            row.failure_reason, row.saga_step, row.updated_at = reason, step, now
            await self.coupons.release(uow, order_id=order_id)
            await uow.publish(events.ORDER_FAILED, events.order_payload(row) | {"reason": reason}, at=now)
            await uow.commit()

    async def _step(self, order_id: str, step: str) -> None:
        async with self.db.uow() as uow:
            row = await repository.order(uow.session, order_id, for_update=True)
            assert row is not None
            row.saga_step, row.updated_at = step, self.clock.now()
            await uow.commit()

    # -- placing --------------------------------------------------------------------------

    async def _replay(self, user_id: str, key: str, digest: str) -> OrderRead | None:
        async with self.db.reader() as uow:
            order = await repository.order_by_key(uow.session, user_id, key)
        if order is None:
            return None
        if order.request_hash != digest:
            raise IdempotencyKeyReused()
        if order.status == OrderStatus.FAILED and order.failure_reason == "INSUFFICIENT_STOCK":
            raise OutOfStock()  # the first answer was this refusal, not an order created
        return order_read(order)

    async def _address(self, user_id: str, address_id: str, field: str) -> AddressInfo:
        address = await self.users.get_address(user_id, address_id)
        if address is None:
            raise AddressNotFound(details=[ErrorDetail(field=field, message=f"{address_id} is not one of yours")])
        return address

    async def _priced_lines(self, lines: list[CartLine]) -> list[PricedLine]:
        """Today's price and tax rate of every line; refuses the lot if one cannot be bought."""
        products = await self.catalog.products([line.product_id for line in lines])
        paths = _category_paths(await self.catalog.categories())
        priced, wrong = [], []
        for line in lines:
            product = products.get(line.product_id)
            variant = product.variants.get(line.variant_id) if product and line.variant_id else None
            if (
                product is None
                or not product.published
                or not product.has_line(line.variant_id)
                or product.currency != self.currency
            ):
                wrong.append(ErrorDetail(field=line.product_id, message="no longer for sale as it is in your cart"))
                continue
            rate = tax_rate(
                paths.get(product.category_id or "", []), default=self.default_tax_rate, overrides=self.tax_rates
            )
            priced.append(PricedLine(line, product, variant.price if variant else product.price, rate))
        if wrong:
            raise ItemsUnavailable(details=wrong)
        return priced

    async def _store(
        self,
        *,
        user_id: str,
        body: OrderCreate,
        lines: list[PricedLine],
        shipping_address: AddressInfo,
        billing_address: AddressInfo,
        idempotency_key: str | None,
        digest: str,
    ) -> Order:
        """The order CREATED, with its coupon redeemed and `order.created` published, in one transaction."""
        now = self.clock.now()
        async with self.db.uow() as uow:
            terms = (
                await self.coupons.terms_for(uow, code=body.coupon_code, user_id=user_id, now=now)
                if body.coupon_code
                else None
            )
            pricing = price(
                [LineIn(p.unit_price, p.line.quantity, p.tax_rate) for p in lines],
                coupon=terms,
                shipping=self.shipping,
            )
            if terms is not None:
                self.coupons.check_applies(terms, pricing.subtotal)
            order = Order(
                order_id=await repository.next_order_id(uow.session, now),
                user_id=user_id,
                status=OrderStatus.CREATED.value,
                payment_status="PENDING",
                payment_method=body.payment_method,
                currency=self.currency,
                **_amounts(pricing),
                refunded_amount=Decimal("0.00"),
                coupon_code=body.coupon_code.upper() if body.coupon_code else None,
                shipping_address_id=shipping_address.address_id,
                billing_address_id=billing_address.address_id,
                shipping_address=_address_json(shipping_address),
                billing_address=_address_json(billing_address),
                saga_step="PLACED",
                idempotency_key=idempotency_key,
                request_hash=digest,
                expires_at=now + self.reservation_ttl,
                created_at=now,
                updated_at=now,
                items=[
                    OrderItem(
                        product_id=p.line.product_id,
                        variant_id=p.line.variant_id,
                        sku=(p.product.variants[p.line.variant_id].sku if p.line.variant_id else p.product.sku),
                        name=p.product.name,
                        attributes=p.product.variants[p.line.variant_id].attributes if p.line.variant_id else {},
                        quantity=p.line.quantity,
                        unit_price=p.unit_price,
                        total_price=priced.total,
                        discount_amount=priced.discount,
                        tax_rate=p.tax_rate,
                        tax_amount=priced.tax,
                    )
                    for p, priced in zip(lines, pricing.lines, strict=True)
                ],
            )
            uow.session.add(order)
            await uow.session.flush()  # a concurrent order with the same Idempotency-Key fails here
            if terms is not None:
                await self.coupons.redeem(uow, code=order.coupon_code or "", user_id=user_id, order_id=order.order_id)
            await uow.publish(events.ORDER_CREATED, events.order_payload(order), at=now)
            await uow.commit()
            return order


def _digest(body: OrderCreate) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _amounts(pricing: Pricing) -> dict[str, Any]:
    return {
        "subtotal_amount": pricing.subtotal,
        "discount_amount": pricing.discount,
        "tax_amount": pricing.tax,
        "shipping_amount": pricing.shipping,
        "total_amount": pricing.total,
    }


def _address_json(address: AddressInfo) -> dict[str, Any]:
    return {
        "addressId": address.address_id,
        "label": address.label,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "state": address.state,
        "postalCode": address.postal_code,
        "country": address.country,
        "phone": address.phone,
    }


def _category_paths(categories: list[CategoryInfo]) -> dict[str, list[str]]:
    """For each category id: its id and slug, then its parent's, up to the root."""
    by_id = {c.category_id: c for c in categories}
    paths: dict[str, list[str]] = {}
    for category in categories:
        path: list[str] = []
        seen: set[str] = set()
        at: CategoryInfo | None = category
        while at is not None and at.category_id not in seen:
            seen.add(at.category_id)
            path += [at.category_id, at.slug]
            at = by_id.get(at.parent_id) if at.parent_id else None
        paths[category.category_id] = path
    return paths
