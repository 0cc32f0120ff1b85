"""Orders: the full checkout with an online payment, as a buyer and the gateway do it: put a
line in the cart, place the order (priced from the catalog, coupon-free, stock reserved, the
sandbox payment opened), then the gateway's signed webhook. The worker confirms the order
(stock committed, confirmation e-mail rendered and sent) from the `payment.captured` event.

A run is valid only if its check passes afterwards: every captured payment's order CONFIRMED,
one payment per order, stock + sold = initial for every item, one confirmation e-mail per
confirmed order."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

from sqlalchemy import Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.flows import AiohttpClient, Flow, FlowClient, expect
from bench.scenario import BenchModule, LoadContext, Scenario, Target
from bench.scenarios.carts import STOCK, _first_variants
from bench.scenarios.catalog import read_each_product
from tienda.inventory.models import OUTBOX as INVENTORY_OUTBOX
from tienda.inventory.models import Reservation, StockItem
from tienda.notifications.models import Notification
from tienda.orders.models import OUTBOX as ORDERS_OUTBOX
from tienda.orders.models import Order
from tienda.payments.models import OUTBOX as PAYMENTS_OUTBOX
from tienda.payments.models import Payment
from tienda.payments.providers.sandbox import SIGNATURE_HEADER, event_body, reference_of, sign
from tienda.platform.clock import SystemClock
from tienda.platform.db import Database
from tienda.users.models import OUTBOX as USERS_OUTBOX
from tienda.users.models import Address, User

SANDBOX_SECRET = "bench-sandbox-webhook-secret"
"""The shop's sandbox secret in the bench (TIENDA_SANDBOX_WEBHOOK_SECRET): the flow signs with it."""


def address_of(user_id: str) -> str:
    return "adr_" + hashlib.sha256(user_id.encode()).hexdigest()[:12]


async def load(ctx: LoadContext) -> None:
    """An address for every user (the checkout ships to it)."""
    db = Database("users", ctx.database_url, outbox=USERS_OUTBOX)
    now = SystemClock().now()
    try:
        async with db.uow() as uow:
            found = await uow.session.execute(select(User.user_id, User.id))
            ids = {str(user_id): int(pk) for user_id, pk in found.all()}
            rows = [
                {
                    "address_id": address_of(u.user_id),
                    "user_id": ids[u.user_id],
                    "label": "home",
                    "line1": "12 MG Road",
                    "city": "Bengaluru",
                    "state": "KA",
                    "postal_code": "560001",
                    "country": "IN",
                    "is_default": True,
                    "created_at": now,
                }
                for u in ctx.users
                if u.user_id in ids
            ]
            for start in range(0, len(rows), 5000):
                await uow.session.execute(insert(Address), rows[start : start + 5000])
            await uow.commit()
    finally:
        await db.dispose()


def _rows(target: Target) -> list[tuple[str, str, str, str]]:
    variants = asyncio.run(_first_variants(target.database_url, list(target.products)))
    products = [p for p in target.products if p in variants]
    return [
        (
            target.token_for(u.user_id),
            address_of(u.user_id),
            products[i % len(products)],
            variants[products[i % len(products)]],
        )
        for i, u in enumerate(target.sample())
    ]


async def _prime(target: Target) -> None:
    """Each product page read once (a buyer sees a product before buying it), and each buyer's
    cart emptied through the API as the buyer would: the cart scenarios before this one leave
    five lines in the same users' carts, which made their first checkouts orders of six items."""
    await read_each_product(target)
    client = AiohttpClient(target.base_url, 32)
    gate = asyncio.Semaphore(32)

    async def empty(token: str) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        async with gate:
            cart = expect(await client.get("/api/v1/carts", headers=auth), "warm-up")
            for item in cart["items"]:
                line = {"productId": item["productId"], "variantId": item["variantId"], "quantity": 0}
                expect(await client.post("/api/v1/carts/items", json=line, headers=auth), "warm-up")

    try:
        await asyncio.gather(*(empty(target.token_for(u.user_id)) for u in target.sample()))
    finally:
        await client.close()


def checkout_flow(sandbox_secret: str) -> Flow:
    """The checkout flow against a shop whose sandbox gateway signs with `sandbox_secret`;
    a row is (bearer token, address id, product id, variant id)."""

    async def checkout(client: FlowClient, row: Sequence[str]) -> None:
        await _checkout(client, row, sandbox_secret)

    return checkout


async def _checkout(client: FlowClient, row: Sequence[str], sandbox_secret: str) -> None:
    token, address_id, product_id, variant_id = row
    auth = {"Authorization": f"Bearer {token}"}
    expect(
        await client.post(
            "/api/v1/carts/items", json={"productId": product_id, "variantId": variant_id, "quantity": 1}, headers=auth
        ),
        "cart",
    )
    order = expect(
        await client.post(
            "/api/v1/orders",
            json={"shippingAddressId": address_id, "paymentMethod": "PAYMENT_GATEWAY"},
            headers=auth | {"Idempotency-Key": uuid.uuid4().hex},
        ),
        "order",
        201,
    )
    created = int(time.time())
    body = event_body(
        event_type="payment.captured",
        payment_id=order["paymentId"],
        reference=reference_of(order["paymentId"]),
        amount=Decimal(str(order["totalAmount"])).quantize(Decimal("0.01")),
        currency=order["currency"],
        created=created,
        event_id=f"evt_{secrets.token_hex(12)}",
    )
    answer = expect(
        await client.post(
            "/api/v1/payments/webhook",
            content=body,
            headers={
                SIGNATURE_HEADER: sign(sandbox_secret, body, timestamp=created),
                "content-type": "application/json",
            },
        ),
        "webhook",
    )
    if answer["outcome"] != "CAPTURED":
        raise ValueError(f"webhook outcome {answer['outcome']}")


checkout = checkout_flow(SANDBOX_SECRET)
"""The flow of the `checkout` and `shop_day` scenarios (the bench's shop signs with SANDBOX_SECRET)."""


@dataclass(frozen=True)
class Stores:
    """Where the modules the check reads keep their tables: one database in the one-process
    shop, a database each in the split deployment (bench/split.py)."""

    orders: str
    payments: str
    inventory: str
    notifications: str

    @classmethod
    def one(cls, url: str) -> Stores:
        return cls(orders=url, payments=url, inventory=url, notifications=url)


@contextlib.asynccontextmanager
async def _sessions(stores: Stores) -> AsyncIterator[dict[str, AsyncSession]]:
    """A read-only session on each module's database (one engine per distinct URL)."""
    urls: dict[str, str] = asdict(stores)
    engines = {url: create_async_engine(url, pool_size=1, max_overflow=0) for url in set(urls.values())}
    try:
        async with contextlib.AsyncExitStack() as stack:
            sessions = {url: await stack.enter_async_context(AsyncSession(engine)) for url, engine in engines.items()}
            yield {module: sessions[url] for module, url in urls.items()}
    finally:
        for engine in engines.values():
            await engine.dispose()


async def _count(session: AsyncSession, query: Select[tuple[int]]) -> int:
    count = int(await session.scalar(query) or 0)
    await session.rollback()  # the next read sees what was committed since
    return count


async def _settled(stores: Stores, within: float = 120.0) -> list[str]:
    """Waits for the workers to relay every event and finish every confirmation; problems if
    they do not within `within` seconds."""
    deadline = time.monotonic() + within
    outboxes = (("orders", ORDERS_OUTBOX), ("payments", PAYMENTS_OUTBOX), ("inventory", INVENTORY_OUTBOX))
    async with _sessions(stores) as db:
        while True:
            waiting = 0
            for module, outbox in outboxes:
                table = outbox.outbox
                waiting += await _count(db[module], select(func.count()).where(table.c.published_at.is_(None)))
            orders = db["orders"]
            pending = await _count(orders, select(func.count()).where(Order.saga_step.in_(("CAPTURED", "SELL"))))
            mails = db["notifications"]
            pending += await _count(mails, select(func.count()).where(Notification.status == "PENDING"))
            # Events published may still wait in the broker's queues: every confirmed order's e-mail must exist.
            pending += max(
                0,
                await _count(orders, select(func.count()).where(Order.status == "CONFIRMED"))
                - await _count(mails, select(func.count()).where(Notification.type == "ORDER_CONFIRMATION")),
            )
            if waiting == 0 and pending == 0:
                return []
            if time.monotonic() > deadline:
                return [
                    f"{waiting} events unpublished, {pending} orders or e-mails still on their way after {within:.0f}s"
                ]
            await asyncio.sleep(0.5)


async def check(target: Target) -> list[str]:
    """The checks of `consistent` on the one-process shop's database."""
    return await consistent(Stores.one(target.database_url))


async def consistent(stores: Stores, *, stock: int = STOCK) -> list[str]:
    """Stock + sold = `stock` (every item started with it); one captured payment per
    confirmed order; every captured payment's order confirmed; one confirmation e-mail per
    confirmed order. Waits for the workers to settle first."""
    problems = await _settled(stores)
    async with _sessions(stores) as db:
        confirmed = set(
            await db["orders"].scalars(
                select(Order.order_id).where(Order.status == "CONFIRMED", Order.payment_method == "PAYMENT_GATEWAY")
            )
        )
        payments = db["payments"]
        captured = list(await payments.scalars(select(Payment.order_id).where(Payment.status == "CAPTURED")))
        payments_per_order = {
            str(o): int(n)
            for o, n in (
                await payments.execute(select(Payment.order_id, func.count()).group_by(Payment.order_id))
            ).all()
        }
        inventory = db["inventory"]
        stock_rows = (
            await inventory.execute(
                select(StockItem.product_id, StockItem.variant_id, StockItem.stock_count, StockItem.reserved_count)
            )
        ).all()

        async def units(status: str) -> dict[tuple[str, str], int]:
            found = await inventory.execute(
                select(Reservation.product_id, Reservation.variant_id, func.sum(Reservation.quantity))
                .where(Reservation.status == status)
                .group_by(Reservation.product_id, Reservation.variant_id)
            )
            return {(p, v): int(q) for p, v, q in found.all()}

        committed, held = await units("COMMITTED"), await units("RESERVED")
        mails = await _count(
            db["notifications"],
            select(func.count()).where(Notification.type == "ORDER_CONFIRMATION", Notification.status == "SENT"),
        )
    not_confirmed = [o for o in captured if o not in confirmed]
    if not_confirmed:
        problems.append(f"{len(not_confirmed)} captured payments whose order is not CONFIRMED, e.g. {not_confirmed[0]}")
    doubled = [o for o, n in payments_per_order.items() if n > 1]
    if doubled:
        problems.append(f"{len(doubled)} orders with more than one payment")
    for product_id, variant_id, stock_count, reserved in stock_rows:
        key = (product_id, variant_id)
        if key in committed and stock_count + committed[key] != stock:
            problems.append(f"{product_id}/{variant_id}: stock {stock_count} + sold {committed[key]} != {stock}")
        if reserved != held.get(key, 0):
            problems.append(f"{product_id}/{variant_id}: reserved {reserved} != held {held.get(key, 0)}")
    if mails != len(confirmed):
        problems.append(f"{mails} confirmation e-mails sent for {len(confirmed)} confirmed orders")
    return problems


MODULE = BenchModule(
    name="orders",
    load=load,
    scenarios=(
        Scenario(
            name="checkout",
            description="The full online checkout of one unit: POST /carts/items, POST /orders (PAYMENT_GATEWAY: "
            "priced, reserved, sandbox payment opened), then the sandbox gateway's signed webhook; the worker "
            "confirms it (stock sold, e-mail sent). One request/s here = one completed checkout/s (the check "
            "after the run waits for every confirmation and fails the run otherwise).",
            concurrencies=(20, 32, 100),
            flow=checkout,
            rows=_rows,
            ceiling=None,
            check=check,
            prime=_prime,
        ),
    ),
    env={
        "TIENDA_SANDBOX_WEBHOOK_SECRET": SANDBOX_SECRET,
        "TIENDA_PAYMENT_PROVIDER": "sandbox",
        "TIENDA_SANDBOX_PAYMENTS": "true",
    },
)
