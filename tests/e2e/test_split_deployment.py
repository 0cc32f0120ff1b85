"""The microservice deployment, end to end, on this machine (tests/e2e/split.py starts it):
eight services, each its own `tienda serve --service M` and `tienda worker --service M` on its
own PostgreSQL database, with the real Redis and RabbitMQ, behind nginx with the gateway's
configuration. Everything below goes through the gateway's URL, as a client's requests and a
payment gateway's webhooks would; what is stored is read from the services' own databases.

1. The full checkout: an admin (`tienda create-admin`) lists a product with stock, a buyer
   registers, adds an address, fills the cart and places an order paid online; the test plays
   the sandbox gateway (a signed webhook); the order is confirmed, the stock sold and the
   confirmation e-mail written, each by another service reacting to events.
2. The payments service is killed (SIGKILL) in the middle of checkouts and restarted:
   - a webhook for an order placed before finds no one: the gateway answers 503, so the
     payment gateway delivers it again later; delivered again after the restart (twice), the
     order is confirmed once;
   - an order placed while payments is down answers 503; it is stored with its units held,
     and once payments is back the orders worker's saga opens its payment, so the buyer
     pays it and it is confirmed.
   Nothing is lost or applied twice: one `order.confirmed`, one captured payment and one
   confirmation e-mail per order, stock + sold = initial, every outbox relayed, no dead letter.

The split deployment's checkout throughput is measured by the bench, beside the one-process
shop's in the same run (`python -m bench.run --scenario checkout --scenario split_checkout`,
bench/split.py): a measurement asserts nothing about time, so it is not a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.e2e.split import ADMIN_EMAIL, ADMIN_PASSWORD, SERVICES, SplitDeployment, dead_letters
from tienda.app import ALL_MODULES
from tienda.inventory.models import OUTBOX as INVENTORY_OUTBOX
from tienda.notifications.models import Notification
from tienda.orders.models import OUTBOX as ORDERS_OUTBOX
from tienda.payments.models import Payment
from tienda.payments.providers.sandbox import SIGNATURE_HEADER, event_body, reference_of, sign

pytestmark = pytest.mark.slow

WEBHOOK = "/api/v1/payments/webhook"
HOME = {"label": "home", "line1": "12 MG Road", "city": "Bengaluru", "postalCode": "560001", "country": "IN"}


@pytest.fixture(scope="module")
async def split(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SplitDeployment]:
    began = time.monotonic()
    async with SplitDeployment(tmp_path_factory.mktemp("split")) as deployment:
        print(f"split deployment up in {time.monotonic() - began:.1f}s: {deployment.timings}")
        yield deployment


# -- clients of the gateway ---------------------------------------------------------------


class Clients:
    """httpx clients of the gateway, each from its own loopback address (127.0.x.y): nginx
    rate-limits per client IP, and buyers, admins and payment gateways are different clients."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self._stack = contextlib.AsyncExitStack()
        self._next = 0
        self.addresses: dict[httpx.AsyncClient, str] = {}
        """The address each client sends from."""

    async def __aenter__(self) -> Clients:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.__aexit__(*exc)

    async def new(self) -> httpx.AsyncClient:
        self._next += 1
        address = f"127.0.{1 + self._next // 250}.{1 + self._next % 250}"
        transport = httpx.AsyncHTTPTransport(local_address=address)
        client = httpx.AsyncClient(base_url=self.gateway, transport=transport, timeout=60)
        self.addresses[client] = address
        return await self._stack.enter_async_context(client)


@dataclass
class Buyer:
    client: httpx.AsyncClient
    user_id: str
    auth: dict[str, str]
    address_id: str


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    tokens = ok(await client.post("/api/v1/users/login", json={"email": email, "password": password}))
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def new_buyer(client: httpx.AsyncClient, email: str) -> Buyer:
    password = "Buyer-pass-1"
    registered = ok(await client.post("/api/v1/users/register", json={"email": email, "password": password}), 201)
    auth = await login(client, email, password)
    address = ok(await client.post(f"/api/v1/users/{registered['userId']}/addresses", json=HOME, headers=auth), 201)
    return Buyer(client, registered["userId"], auth, address["addressId"])


async def product_for_sale(client: httpx.AsyncClient, admin: dict[str, str], name: str, stock: int) -> dict[str, Any]:
    """Created and published in the catalog, stocked in inventory: one variant."""
    body = {"name": name, "price": 499.0, "variants": [{"attributes": {"color": "red", "size": "M"}}]}
    product: dict[str, Any] = ok(await client.post("/api/v1/products", json=body, headers=admin), 201)
    ok(await client.post(f"/api/v1/products/{product['productId']}/publish", headers=admin))
    adjust = {
        "productId": product["productId"],
        "variantId": product["variants"][0]["variantId"],
        "delta": stock,
        "reason": "Opening stock",
    }
    ok(await client.post("/api/v1/inventory/adjust", json=adjust, headers=admin))
    return product


async def fill_cart(who: Buyer, product: dict[str, Any], quantity: int) -> None:
    line = {"productId": product["productId"], "variantId": product["variants"][0]["variantId"], "quantity": quantity}
    ok(await who.client.post("/api/v1/carts/items", json=line, headers=who.auth))


async def place(who: Buyer, key: str) -> httpx.Response:
    body = {"shippingAddressId": who.address_id, "paymentMethod": "PAYMENT_GATEWAY"}
    return await who.client.post("/api/v1/orders", json=body, headers=who.auth | {"Idempotency-Key": key})


async def order_of(who: Buyer, order_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(await who.client.get(f"/api/v1/orders/{order_id}", headers=who.auth))
    return found


def captured(order: dict[str, Any], event_id: str | None = None) -> bytes:
    """The sandbox gateway's `payment.captured` event for the order's payment."""
    return event_body(
        event_type="payment.captured",
        payment_id=order["paymentId"],
        reference=reference_of(order["paymentId"]),
        amount=Decimal(str(order["totalAmount"])).quantize(Decimal("0.01")),
        currency=order["currency"],
        created=int(time.time()),
        event_id=event_id or f"evt_{secrets.token_hex(12)}",
    )


async def deliver(gateway: httpx.AsyncClient, secret: str, body: bytes) -> httpx.Response:
    """The payment gateway POSTs its event, signed now (a redelivery is signed again)."""
    headers = {SIGNATURE_HEADER: sign(secret, body, timestamp=int(time.time())), "content-type": "application/json"}
    return await gateway.post(WEBHOOK, content=body, headers=headers)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within:.0f}s: {what}"
        await asyncio.sleep(0.2)


async def status_is(who: Buyer, order_id: str, status: str) -> bool:
    return (await order_of(who, order_id))["status"] == status


async def stock_of(client: httpx.AsyncClient, product: dict[str, Any]) -> tuple[int, int]:
    """(stockCount, reserved) of the product, from the inventory service's route."""
    stock = ok(await client.get(f"/api/v1/inventory/{product['productId']}"))
    return int(stock["stockCount"]), int(stock["reserved"])


async def confirmations(client: httpx.AsyncClient, admin: dict[str, str], user_id: str) -> list[dict[str, Any]]:
    """The confirmation e-mails of a user, from the notifications service's admin route."""
    params = {"type": "ORDER_CONFIRMATION", "userId": user_id}
    page = ok(await client.get("/api/v1/notifications", params=params, headers=admin))
    items: list[dict[str, Any]] = page["items"]
    return items


async def sent_confirmations(client: httpx.AsyncClient, admin: dict[str, str], user_id: str, count: int) -> bool:
    found = await confirmations(client, admin, user_id)
    return len(found) == count and all(n["status"] == "SENT" for n in found)


def mails_about(split: SplitDeployment, order_id: str) -> list[Path]:
    """E-mails the notifications worker wrote (the file mailer) that mention the order."""
    folder = split.services["notifications"].data_dir / "mail"
    return [path for path in sorted(folder.glob("*.eml")) if order_id in path.read_text(errors="replace")]


# -- what the services stored ---------------------------------------------------------------


class Stored:
    """Reads of the services' own databases."""

    def __init__(self, split: SplitDeployment) -> None:
        self.engines: dict[str, AsyncEngine] = {
            name: create_async_engine(split.services[name].database_url, pool_size=1, max_overflow=0)
            for name in SERVICES
        }

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()

    async def rows(self, module: str, query: Any) -> list[Any]:
        async with self.engines[module].connect() as conn:
            return list((await conn.execute(query)).all())

    async def events(self, module: str, table: Table, event_type: str) -> list[dict[str, Any]]:
        found = await self.rows(module, select(table.c.payload).where(table.c.type == event_type))
        return [row.payload for row in found]

    async def unpublished(self) -> dict[str, int]:
        waiting: dict[str, int] = {}
        for module in SERVICES:
            outbox = _outbox(module)
            [(count,)] = await self.rows(
                module, select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
            if count:
                waiting[module] = int(count)
        return waiting


def _outbox(module: str) -> Table:
    [spec] = [spec for spec in ALL_MODULES if spec.name == module]
    return spec.outbox.outbox


# -- the tests --------------------------------------------------------------------------------


async def test_checkout_through_the_gateway_and_payments_killed_mid_checkout(split: SplitDeployment) -> None:
    began = time.monotonic()
    stored = Stored(split)
    with split.logs_on_failure():
        try:
            async with Clients(split.gateway) as clients:
                await _scenario(split, clients, stored)
        finally:
            await stored.close()
    print(f"scenario took {time.monotonic() - began:.1f}s")


async def _scenario(split: SplitDeployment, clients: Clients, stored: Stored) -> None:
    secret = split.sandbox_secret
    public = await clients.new()
    payment_gateway = await clients.new()  # the sandbox gateway's webhooks come from elsewhere
    assert ok(await public.get("/healthz")) == {"status": "ok"}
    assert (await public.get("/internal/orders/ord_1")).status_code == 404  # services' own routes stay inside

    # -- 1. the full checkout --------------------------------------------------------------
    admin_client = await clients.new()
    admin = await login(admin_client, ADMIN_EMAIL, ADMIN_PASSWORD)  # made by `tienda create-admin`
    initial = 10
    tee = await product_for_sale(admin_client, admin, "Split Deployment Tee", initial)

    async def listed() -> bool:  # inventory -> catalog (stock copy) and catalog -> search, by events
        detail = ok(await public.get(f"/api/v1/products/{tee['productId']}"))
        found = ok(await public.get("/api/v1/products/search", params={"q": "split deployment"}))
        return detail["stock"] == initial and [p["productId"] for p in found["items"]] == [tee["productId"]]

    await eventually(listed, "the product listed with its stock and searchable")

    asha = await new_buyer(await clients.new(), "asha@split.example.com")
    await fill_cart(asha, tee, 2)
    placed = ok(await place(asha, uuid.uuid4().hex), 201)
    assert (placed["status"], placed["paymentStatus"]) == ("CREATED", "PENDING")
    assert placed["paymentUrl"] == f"{split.gateway}/api/v1/payments/sandbox/{placed['paymentId']}"
    page = await asha.client.get(placed["paymentUrl"])  # the sandbox gateway's page, through the gateway
    assert page.status_code == 200
    assert placed["paymentId"] in page.text
    assert await stock_of(public, tee) == (initial, 2)
    assert ok(await asha.client.get("/api/v1/carts", headers=asha.auth))["items"] == []

    answer = ok(await deliver(payment_gateway, secret, captured(placed)))
    assert (answer["outcome"], answer["paymentId"]) == ("CAPTURED", placed["paymentId"])
    await eventually(lambda: status_is(asha, placed["orderId"], "CONFIRMED"), "the paid order confirmed")
    assert (await order_of(asha, placed["orderId"]))["paymentStatus"] == "CAPTURED"
    await eventually(lambda: _equals(stock_of(public, tee), (initial - 2, 0)), "the stock sold")
    await eventually(lambda: sent_confirmations(public, admin, asha.user_id, 1), "the confirmation e-mail sent")
    [mail] = mails_about(split, placed["orderId"])
    assert "To: asha@split.example.com" in mail.read_text()

    # -- 2. payments killed mid-checkout -----------------------------------------------------
    ravi = await new_buyer(await clients.new(), "ravi@split.example.com")
    await fill_cart(ravi, tee, 1)
    pending = ok(await place(ravi, uuid.uuid4().hex), 201)
    capture = captured(pending)

    split.kill("payments")  # SIGKILL: the API process of payments is gone; its worker runs on

    # The gateway's webhook finds no payments service: nginx answers 503 itself, and a real
    # payment gateway delivers the event again later (they retry until they get a 2xx).
    refused = await deliver(payment_gateway, secret, capture)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "SERVICE_UNAVAILABLE"
    assert (await order_of(ravi, pending["orderId"]))["status"] == "CREATED"

    # An order placed while payments is down: the buyer gets a 503 (no payment could be opened).
    meera = await new_buyer(await clients.new(), "meera@split.example.com")
    await fill_cart(meera, tee, 1)
    key = uuid.uuid4().hex
    down = await place(meera, key)
    assert down.status_code == 503, down.text
    assert down.json()["code"] in ("UPSTREAM_UNAVAILABLE", "CIRCUIT_OPEN")
    # ... and what is stored: the order, CREATED and unpaid, its unit held, the cart emptied.
    [stuck] = ok(await meera.client.get("/api/v1/orders", headers=meera.auth))["items"]
    assert (stuck["status"], stuck["paymentStatus"], stuck["paymentUrl"]) == ("CREATED", "PENDING", None)
    assert await stock_of(public, tee) == (initial - 2, 2)  # ravi's unit and meera's
    assert ok(await meera.client.get("/api/v1/carts", headers=meera.auth))["items"] == []
    # Trying again with the same Idempotency-Key gives the same order, never a second one.
    assert ok(await place(meera, key), 201)["orderId"] == stuck["orderId"]

    await split.restart("payments")

    # The payment gateway's next delivery of the same event is taken; a further one is a duplicate.
    assert ok(await deliver(payment_gateway, secret, capture))["outcome"] == "CAPTURED"
    assert ok(await deliver(payment_gateway, secret, capture))["outcome"] == "DUPLICATE"
    await eventually(lambda: status_is(ravi, pending["orderId"], "CONFIRMED"), "ravi's order confirmed")

    # The orders worker resumes meera's stalled checkout (after 30 s without progress): her
    # payment is opened now, and she finds where to pay on her order.
    async def payable() -> bool:
        return (await order_of(meera, stuck["orderId"]))["paymentUrl"] is not None

    await eventually(payable, "meera's payment opened by the saga", within=90)
    resumed = ok(await place(meera, key), 201)
    assert resumed["orderId"] == stuck["orderId"]
    assert resumed["paymentUrl"].startswith(split.gateway)
    assert ok(await deliver(payment_gateway, secret, captured(resumed)))["outcome"] == "CAPTURED"
    await eventually(lambda: status_is(meera, stuck["orderId"], "CONFIRMED"), "meera's order confirmed")

    # -- nothing lost, nothing applied twice ----------------------------------------------
    orders = {placed["orderId"]: 2, pending["orderId"]: 1, stuck["orderId"]: 1}
    sold = sum(orders.values())
    await eventually(lambda: _equals(stock_of(public, tee), (initial - sold, 0)), "stock + sold = initial")
    for who, count in ((asha, 1), (ravi, 1), (meera, 1)):
        await eventually(lambda who=who, count=count: sent_confirmations(public, admin, who.user_id, count), "e-mails")
    await eventually(lambda: _equals(stored.unpublished(), {}), "every outbox relayed")
    await asyncio.sleep(1.0)  # anything still to come (a redelivered event) would land by now

    confirmed = [e["orderId"] for e in await stored.events("orders", ORDERS_OUTBOX.outbox, "order.confirmed")]
    assert sorted(o for o in confirmed if o in orders) == sorted(orders)  # once each
    payments = await stored.rows(
        "payments", select(Payment.order_id, Payment.status).where(Payment.order_id.in_(orders))
    )
    assert sorted(payments) == sorted((order_id, "CAPTURED") for order_id in orders)
    assert await stock_of(public, tee) == (initial - sold, 0)
    committed = await stored.events("inventory", INVENTORY_OUTBOX.outbox, "inventory.updated")
    assert committed  # the catalog's copy is fed by these
    assert ok(await public.get(f"/api/v1/products/{tee['productId']}"))["stock"] == initial - sold
    notes = await stored.rows(
        "notifications", select(Notification.payload).where(Notification.type == "ORDER_CONFIRMATION")
    )
    assert sorted(n.payload["orderId"] for n in notes if n.payload["orderId"] in orders) == sorted(orders)
    for order_id in orders:
        assert len(mails_about(split, order_id)) == 1, order_id
    assert await dead_letters(split.amqp_url, split.prefix) == 0


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def test_a_service_keeps_an_idle_connection_open_longer_than_its_callers_do(split: SplitDeployment) -> None:
    """nginx keeps idle upstream connections 60 s and a service's client 30 s; a service that
    closed them sooner (uvicorn's default: 5 s) could close one as a caller sends a request on
    it, which the caller cannot safely send again: a 503 under load."""
    service = split.services["catalog"]
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n\r\n".encode()
    try:
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(7)  # idle past uvicorn's default keep-alive, on the same connection
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
    finally:
        writer.close()
