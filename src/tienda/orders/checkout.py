"""Placing an order (SEED.md 7.4): read the caller's cart, today's prices (catalog) and the
addresses (users); store the order CREATED with its priced lines and its coupon's redemption
(saga step PLACED); then the saga (saga.py) reserves the stock and confirms (COD) or opens the
payment and answers with where to pay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.carts.client import CartLine, CartsClient
from tienda.catalog.client import CatalogClient, CategoryInfo, ProductInfo
from tienda.orders import events, repository
from tienda.orders.coupons import CouponService
from tienda.orders.domain import (
    LineIn,
    OrderStatus,
    Pricing,
    ShippingTerms,
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
    PaymentGatewayDown,
)
from tienda.orders.models import Order, OrderItem
from tienda.orders.reads import order_read
from tienda.orders.saga import Saga
from tienda.orders.schemas import OrderCreate, OrderRead
from tienda.platform.clock import Clock
from tienda.platform.db import Database
from tienda.platform.errors import AppError, ErrorDetail
from tienda.platform.events import outbox_row
from tienda.users.client import AddressInfo, UsersClient


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
    users: UsersClient
    saga: Saga
    coupons: CouponService
    clock: Clock
    currency: str
    default_tax_rate: Any
    tax_rates: dict[str, Any]
    shipping: ShippingTerms
    reservation_ttl: timedelta
    """How long the order waits for its payment (its units are held as long)."""

    async def place(self, *, user_id: str, body: OrderCreate, idempotency_key: str | None) -> OrderRead:
        """The order from the caller's cart, its saga carried on. With an Idempotency-Key, a
        request that repeats an earlier one gets its answer: not looked for first (nearly
        every key is new, and a read per order was a statement for nothing), but when this
        one is refused, by the unique key of the INSERT or earlier (the first one emptied the
        cart, say), the earlier order under the key is the answer. A repeat costs the reads
        of a placing (and an order number, but on PostgreSQL without a coupon: there the
        number is taken by the refused statement itself)."""
        digest = _digest(body)
        try:
            order = await self._placed(user_id, body, idempotency_key, digest)
        except (AppError, IntegrityError):
            if idempotency_key is None:
                raise
            replay = await self._replay(user_id, idempotency_key, digest)
            if replay is None:
                raise
            return replay
        return await self.advance(order.order_id, order)

    async def _placed(self, user_id: str, body: OrderCreate, idempotency_key: str | None, digest: str) -> Order:
        """The order stored CREATED (saga step PLACED), or the error that refuses it."""
        if body.user_id is not None and body.user_id != user_id:
            raise CartNotYours("The order is built from your own cart; userId must be yours")
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
        return await self._store(
            user_id=user_id,
            body=body,
            lines=lines,
            shipping_address=shipping,
            billing_address=billing,
            idempotency_key=idempotency_key,
            digest=digest,
        )

    async def advance(self, order_id: str, order: Order | None = None) -> OrderRead:
        return order_read(await self.saga.advance(order_id, order))

    async def resume(self, *, stalled_after: timedelta = timedelta(seconds=30), limit: int = 100) -> int:
        return await self.saga.resume(stalled_after=stalled_after, limit=limit)

    async def _reserve(self, order: Order) -> None:
        await self.saga._reserve(order)

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
        if order.status == OrderStatus.FAILED and order.failure_reason == "PAYMENT_GATEWAY_ERROR":
            raise PaymentGatewayDown()
        return order_read(order)

    async def _address(self, user_id: str, address_id: str, field: str) -> AddressInfo:
        address = await self.users.get_address(user_id, address_id)
        if address is None:
            raise AddressNotFound(details=[ErrorDetail(field=field, message=f"{address_id} is not one of yours")])
        return address

    async def _priced_lines(self, lines: list[CartLine]) -> list[PricedLine]:
        """Today's price and tax rate of every line; refuses the lot if one cannot be bought."""
        products = await self.catalog.products([line.product_id for line in lines])
        # The category tree only matters to per-category rates: without any, it is not asked for.
        paths = _category_paths(await self.catalog.categories()) if self.tax_rates else {}
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
        """The order CREATED, with its coupon redeemed and `order.created` published, in one
        transaction; on PostgreSQL an order without a coupon in one statement with its number
        (`repository.place`)."""
        now = self.clock.now()
        if not body.coupon_code and self.db.multi_table_statements:
            # The number is taken by the statement that stores the order (`repository.place`).
            placing = _Placing("", user_id, body, lines, shipping_address, billing_address, idempotency_key, digest)
            order = self._order(placing, price(_lines_in(lines), coupon=None, shipping=self.shipping), now)
            event = outbox_row(events.ORDER_CREATED, events.order_payload(order), source=self.db.module, at=now)
            await repository.place(self.db, order, event, day=repository.order_day(now))
            self.db.published()
            return order
        order_id = await repository.next_order_id(self.db, now)
        placing = _Placing(order_id, user_id, body, lines, shipping_address, billing_address, idempotency_key, digest)
        async with self.db.uow() as uow:
            terms = (
                await self.coupons.terms_for(uow, code=body.coupon_code, user_id=user_id, now=now)
                if body.coupon_code
                else None
            )
            pricing = price(_lines_in(lines), coupon=terms, shipping=self.shipping)
            if terms is not None:
                self.coupons.check_applies(terms, pricing.subtotal)
            order = self._order(placing, pricing, now)
            uow.session.add(order)
            await uow.session.flush()  # a concurrent order with the same Idempotency-Key fails here
            if terms is not None:
                await self.coupons.redeem(uow, code=order.coupon_code or "", user_id=user_id, order_id=order.order_id)
            await uow.publish(events.ORDER_CREATED, events.order_payload(order), at=now)
            await uow.commit()
            return order

    def _order(self, placing: _Placing, pricing: Pricing, now: datetime) -> Order:
        """The order as it is stored when placed (saga step PLACED), with its priced lines."""
        body = placing.body
        return Order(
            order_id=placing.order_id,
            user_id=placing.user_id,
            status=OrderStatus.CREATED.value,
            payment_status="PENDING",
            payment_method=body.payment_method,
            currency=self.currency,
            **_amounts(pricing),
            refunded_amount=Decimal("0.00"),
            coupon_code=body.coupon_code.upper() if body.coupon_code else None,
            shipping_address_id=placing.shipping.address_id,
            billing_address_id=placing.billing.address_id,
            shipping_address=_address_json(placing.shipping),
            billing_address=_address_json(placing.billing),
            saga_step="PLACED",
            idempotency_key=placing.idempotency_key,
            request_hash=placing.digest,
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
                for p, priced in zip(placing.lines, pricing.lines, strict=True)
            ],
        )


@dataclass(frozen=True)
class _Placing:
    """What an order is made of, besides its prices and time."""

    order_id: str
    user_id: str
    body: OrderCreate
    lines: list[PricedLine]
    shipping: AddressInfo
    billing: AddressInfo
    idempotency_key: str | None
    digest: str


def _lines_in(lines: list[PricedLine]) -> list[LineIn]:
    return [LineIn(p.unit_price, p.line.quantity, p.tax_rate) for p in lines]


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
