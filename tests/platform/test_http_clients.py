"""Calls between modules running as separate services: who may call `/internal/...`, and how
a caller lives with a service that fails, hangs or is gone (retries for idempotent calls only,
timeouts, the circuit breaker). The callees are the real inventory and carts services, each
served alone by uvicorn with its own database (tests/services.py); failures come from a
proxy standing in for the network between them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from tests.ports import free_port
from tests.services import FaultyNetwork, Served, bearer, caller, serve
from tienda.carts.client import CartLine, HttpCartsClient, carts_client
from tienda.carts.module import MODULE as CARTS
from tienda.inventory.client import (
    HttpInventoryClient,
    InProcessInventoryClient,
    StockGone,
    StockLine,
    inventory_client,
)
from tienda.inventory.module import MODULE as INVENTORY
from tienda.payments.client import payments_client
from tienda.platform.auth import Role, TokenService
from tienda.platform.cache import MemoryCache
from tienda.platform.clock import FrozenClock, SystemClock
from tienda.platform.http import (
    BreakerState,
    CircuitOpen,
    Refused,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tienda.platform.runtime import Platform

ENVELOPE_KEYS = {"timestamp", "status", "error", "message", "path", "code", "requestId"}
AVAILABLE = "/internal/inventory/available"
TIMEOUT = 2.0
"""The callers' timeout; HANG, how long the network holds a request when told to. With 1 s, a
call through to a real service now and then took longer in a full parallel run on two cores."""
HANG = 4.0


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Inventory and carts, each its own service; carts reaches inventory over HTTP (and the
    catalog nowhere: nothing here needs it)."""
    root = tmp_path_factory.mktemp("services")
    inventory = serve([INVENTORY], root / "inventory")
    carts = serve([CARTS], root / "carts", inventory_url=inventory.url, catalog_url=f"http://127.0.0.1:{free_port()}")
    yield {"inventory": inventory, "carts": carts}
    carts.stop()
    inventory.stop()


@pytest.fixture(scope="module")
def network(services: dict[str, Served]) -> Iterator[FaultyNetwork]:
    """The way from callers to inventory, with faults on demand."""
    proxy = FaultyNetwork(services["inventory"].url, hang_seconds=HANG)
    yield proxy
    proxy.stop()


@pytest.fixture
def faults(network: FaultyNetwork) -> FaultyNetwork:
    network.plan.clear()
    network.seen.clear()
    network.always = "pass"
    network.forwarded = 0
    network.hang_seconds = HANG
    return network


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def caller_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def orders(
    tmp_path: Path,
    services: dict[str, Served],
    faults: FaultyNetwork,
    clock: FrozenClock,
    caller_settings: dict[str, Any],
) -> AsyncIterator[Platform]:
    """A process running none of the modules it calls (as the orders service): inventory
    through the faulty network, carts straight."""
    settings: dict[str, Any] = {
        "inventory_url": faults.url,
        "carts_url": services["carts"].url,
        "service_timeout_seconds": TIMEOUT,
        "service_breaker_failures": 3,
        "service_breaker_cooldown_seconds": 30.0,
        **caller_settings,
    }
    platform = caller(tmp_path / "orders", clock, **settings)
    yield platform
    await platform.close()


async def restock(services: dict[str, Served], platform: Platform, product_id: str, units: int) -> None:
    async with httpx.AsyncClient(base_url=services["inventory"].url) as admin:
        response = await admin.post(
            "/api/v1/inventory/adjust",
            json={"productId": product_id, "delta": units, "reason": "Restock from supplier"},
            headers=bearer(platform, "u_admin", Role.ADMIN),
        )
    assert response.status_code == 200, response.text


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


def http_inventory(platform: Platform) -> HttpInventoryClient:
    client = inventory_client(platform)
    assert isinstance(client, HttpInventoryClient)
    return client


def breaker_state(platform: Platform, module: str) -> BreakerState:
    assert platform.remotes is not None
    return platform.remotes.get(module).breaker.state


class TestTheClientOfAModule:
    async def test_is_the_in_process_one_where_the_module_runs_and_http_elsewhere(self, orders: Platform) -> None:
        with_inventory = Platform.build(orders.settings, [INVENTORY], clock=FrozenClock())
        try:
            assert isinstance(inventory_client(with_inventory), InProcessInventoryClient)
            assert isinstance(inventory_client(orders), HttpInventoryClient)
            assert isinstance(carts_client(orders), HttpCartsClient)
        finally:
            await with_inventory.close()

    async def test_of_a_module_neither_here_nor_configured_names_the_missing_setting(self, orders: Platform) -> None:
        assert not orders.reaches("payments")
        with pytest.raises(RuntimeError, match="TIENDA_PAYMENTS_URL is not set"):
            payments_client(orders)


class TestInternalRoutesAnswerServicesOnly:
    @pytest.mark.parametrize(
        ("who", "status", "code"),
        [
            (None, 401, "UNAUTHORIZED"),
            (Role.USER, 403, "SERVICE_ONLY"),
            (Role.ADMIN, 403, "SERVICE_ONLY"),
        ],
    )
    async def test_anyone_but_a_service_is_refused_in_the_envelope(
        self, services: dict[str, Served], orders: Platform, who: Role | None, status: int, code: str
    ) -> None:
        headers = bearer(orders, "u_1", who) if who else {}
        async with httpx.AsyncClient(base_url=services["inventory"].url) as client:
            response = await client.post(AVAILABLE, json={"productIds": ["p_1"]}, headers=headers)

        assert response.status_code == status
        body = response.json()
        assert body.keys() >= ENVELOPE_KEYS
        assert (body["status"], body["code"], body["path"]) == (status, code, AVAILABLE)

    async def test_a_service_token_signed_with_another_key_is_refused(self, services: dict[str, Served]) -> None:
        forger = TokenService(
            key="another-key-that-is-long-enough-for-hs256",
            algorithm="HS256",
            issuer="tienda",
            ttl_seconds=60,
            clock=SystemClock(),
            cache=MemoryCache(),
        )
        token = forger.issue("service:orders", Role.SERVICE).token
        async with httpx.AsyncClient(base_url=services["inventory"].url) as client:
            response = await client.post(
                AVAILABLE, json={"productIds": ["p_1"]}, headers={"Authorization": f"Bearer {token}"}
            )

        assert (response.status_code, response.json()["code"]) == (401, "UNAUTHORIZED")

    async def test_internal_routes_are_not_in_the_api_document_nor_under_the_api_prefixes(
        self, services: dict[str, Served], orders: Platform
    ) -> None:
        async with httpx.AsyncClient(base_url=services["inventory"].url) as client:
            document = (await client.get("/openapi.json")).json()
            aliased = await client.post(
                f"/api/v1{AVAILABLE}", json={"productIds": []}, headers=bearer(orders, "service:x", Role.SERVICE)
            )

        assert not [path for path in document["paths"] if "internal" in path]
        assert document["paths"]  # the module's public routes are there
        assert aliased.status_code == 404

    async def test_a_caller_mints_a_short_lived_service_token_and_renews_it(
        self, services: dict[str, Served], orders: Platform, faults: FaultyNetwork, clock: FrozenClock
    ) -> None:
        inventory = http_inventory(orders)
        await inventory.available(["p_token"])
        await inventory.available(["p_token"])
        clock.advance(minutes=4, seconds=30)
        await inventory.available(["p_token"])

        tokens = [headers["authorization"].removeprefix("Bearer ") for _, _, headers in faults.seen]
        assert tokens[0] == tokens[1] != tokens[2]
        principal = await orders.tokens.verify(tokens[2])
        assert (principal.role, principal.subject) == (Role.SERVICE, "service:tienda")
        assert 299 < (principal.expires_at - clock.now()).total_seconds() <= 300

    async def test_a_caller_without_the_shared_key_gets_an_upstream_error_and_the_breaker_stays_closed(
        self, tmp_path: Path, services: dict[str, Served]
    ) -> None:
        stranger = caller(
            tmp_path / "stranger",
            inventory_url=services["inventory"].url,
            jwt_secret="another-key-that-is-long-enough-for-hs256",
            service_breaker_failures=1,
        )
        try:
            with pytest.raises(UpstreamError) as refused:
                await http_inventory(stranger).available(["p_1"])
            assert (refused.value.status, refused.value.code) == (502, "UPSTREAM_ERROR")
            assert breaker_state(stranger, "inventory") is BreakerState.CLOSED
        finally:
            await stranger.close()

    async def test_the_request_id_goes_along(self, orders: Platform, faults: FaultyNetwork) -> None:
        with structlog.contextvars.bound_contextvars(request_id="req-from-the-buyer"):
            await http_inventory(orders).available(["p_rid"])

        [(_, _, headers)] = faults.seen
        assert headers["x-request-id"] == "req-from-the-buyer"


class TestRetries:
    async def test_an_idempotent_read_is_tried_again_after_a_503(
        self, services: dict[str, Served], orders: Platform, faults: FaultyNetwork
    ) -> None:
        await restock(services, orders, "p_retry_read", 7)
        faults.plan.extend(["503", "503"])

        available = await http_inventory(orders).available(["p_retry_read"])

        assert available == {("p_retry_read", None): 7}
        assert faults.paths() == [AVAILABLE] * 3
        assert breaker_state(orders, "inventory") is BreakerState.CLOSED

    async def test_a_reservation_tried_again_holds_the_units_once(
        self, services: dict[str, Served], orders: Platform, faults: FaultyNetwork
    ) -> None:
        await restock(services, orders, "p_retry_hold", 5)
        inventory = http_inventory(orders)
        faults.plan.extend(["hang"])  # the first try reserves, but its answer comes too late

        await inventory.reserve("ord_20260101_0001", [StockLine("p_retry_hold", None, 2)], ttl=timedelta(minutes=15))
        await until(lambda: faults.forwarded == 2)  # the held first try has reached inventory too

        assert faults.paths() == ["/internal/inventory/reservations/ord_20260101_0001"] * 2
        assert await inventory.available(["p_retry_hold"]) == {("p_retry_hold", None): 3}

    async def test_retries_give_up_after_the_configured_number(self, orders: Platform, faults: FaultyNetwork) -> None:
        faults.always = "503"

        with pytest.raises(UpstreamUnavailable) as failed:
            await http_inventory(orders).available(["p_1"])

        assert (failed.value.status, failed.value.code) == (503, "UPSTREAM_UNAVAILABLE")
        assert len(faults.seen) == 3  # the try and its 2 retries

    async def test_a_call_that_is_not_idempotent_is_tried_once(
        self, tmp_path: Path, services: dict[str, Served]
    ) -> None:
        carts_network = FaultyNetwork(services["carts"].url, hang_seconds=HANG)
        orders = caller(tmp_path / "orders-to-carts", carts_url=carts_network.url, service_timeout_seconds=TIMEOUT)
        carts = carts_client(orders)
        try:
            carts_network.plan.append("503")
            with pytest.raises(UpstreamUnavailable):
                await carts.remove_lines("u_1", [CartLine("p_1", None, 1)])
            assert carts_network.paths() == ["/internal/carts/u_1/take-out"]

            carts_network.plan.append("hang")
            with pytest.raises(UpstreamTimeout):
                await carts.remove_lines("u_1", [CartLine("p_1", None, 1)])
            assert len(carts_network.seen) == 2

            await carts.remove_lines("u_1", [CartLine("p_1", None, 1)])  # the way is clear again
            assert len(carts_network.seen) == 3
        finally:
            await orders.close()
            carts_network.stop()


class TestTimeouts:
    @pytest.mark.parametrize("caller_settings", [{"service_retries": 0}])
    async def test_a_service_that_does_not_answer_in_time_is_a_504(
        self, orders: Platform, faults: FaultyNetwork
    ) -> None:
        faults.plan.append("hang")
        started = time.monotonic()

        with pytest.raises(UpstreamTimeout) as late:
            await http_inventory(orders).available(["p_1"])

        assert TIMEOUT <= time.monotonic() - started < HANG
        assert (late.value.status, late.value.code) == (504, "UPSTREAM_TIMEOUT")

    async def test_a_service_that_is_not_there_is_a_503(self, tmp_path: Path) -> None:
        nowhere = caller(tmp_path / "alone", inventory_url=f"http://127.0.0.1:{free_port()}", service_retries=1)
        try:
            with pytest.raises(UpstreamUnavailable) as gone:
                await http_inventory(nowhere).available(["p_1"])
            assert "could not be reached" in gone.value.message
        finally:
            await nowhere.close()


class TestCircuitBreaker:
    """Three failed calls in a row open it for 30 s of the caller's clock (fixture `orders`)."""

    @pytest.fixture
    def caller_settings(self) -> dict[str, Any]:
        return {"service_retries": 0}

    async def fail(self, inventory: HttpInventoryClient, times: int) -> None:
        for _ in range(times):
            with pytest.raises(UpstreamUnavailable):
                await inventory.available(["p_1"])

    async def test_opens_after_consecutive_failures_and_then_fails_fast_without_calling(
        self, orders: Platform, faults: FaultyNetwork
    ) -> None:
        inventory = http_inventory(orders)
        faults.always = "503"
        await self.fail(inventory, 2)
        assert breaker_state(orders, "inventory") is BreakerState.CLOSED
        await self.fail(inventory, 1)
        assert breaker_state(orders, "inventory") is BreakerState.OPEN

        faults.always = "pass"
        with pytest.raises(CircuitOpen) as fast:
            await inventory.available(["p_1"])

        assert len(faults.seen) == 3  # the fourth call never left the caller
        assert (fast.value.status, fast.value.code) == (503, "CIRCUIT_OPEN")
        assert fast.value.headers["Retry-After"] == "30"

    async def test_after_the_cooldown_one_successful_trial_closes_it(
        self, services: dict[str, Served], orders: Platform, faults: FaultyNetwork, clock: FrozenClock
    ) -> None:
        await restock(services, orders, "p_breaker", 4)
        inventory = http_inventory(orders)
        faults.always = "503"
        await self.fail(inventory, 3)
        clock.advance(seconds=29)
        with pytest.raises(CircuitOpen):
            await inventory.available(["p_breaker"])

        clock.advance(seconds=1)
        faults.always = "pass"
        assert breaker_state(orders, "inventory") is BreakerState.HALF_OPEN
        assert await inventory.available(["p_breaker"]) == {("p_breaker", None): 4}

        assert breaker_state(orders, "inventory") is BreakerState.CLOSED
        assert await inventory.available(["p_breaker"]) == {("p_breaker", None): 4}
        assert len(faults.seen) == 5

    async def test_a_failed_trial_opens_it_again_for_a_whole_cooldown(
        self, orders: Platform, faults: FaultyNetwork, clock: FrozenClock
    ) -> None:
        inventory = http_inventory(orders)
        faults.always = "503"
        await self.fail(inventory, 3)
        clock.advance(seconds=30)

        await self.fail(inventory, 1)  # the trial

        assert breaker_state(orders, "inventory") is BreakerState.OPEN
        clock.advance(seconds=29)
        with pytest.raises(CircuitOpen):
            await inventory.available(["p_1"])
        assert len(faults.seen) == 4

    async def test_while_the_trial_is_out_other_calls_still_fail_fast(
        self, orders: Platform, faults: FaultyNetwork, clock: FrozenClock
    ) -> None:
        inventory = http_inventory(orders)
        faults.always = "503"
        await self.fail(inventory, 3)
        clock.advance(seconds=30)
        faults.always = "pass"
        faults.hang_seconds = 0.3
        faults.plan.append("hang")
        trial = asyncio.create_task(inventory.available(["p_1"]))
        await until(lambda: len(faults.seen) == 4)
        with pytest.raises(CircuitOpen):
            await inventory.available(["p_1"])
        await trial  # held 0.3 s, within the timeout: a success

        assert breaker_state(orders, "inventory") is BreakerState.CLOSED
        assert len(faults.seen) == 4

    async def test_domain_errors_are_answers_and_break_a_run_of_failures(
        self, orders: Platform, faults: FaultyNetwork
    ) -> None:
        inventory = http_inventory(orders)
        faults.always = "503"
        await self.fail(inventory, 2)
        faults.always = "pass"
        with pytest.raises(StockGone):  # a 409 from inventory: it is up and said no
            await inventory.commit("ord_20260101_0404")
        faults.always = "503"
        await self.fail(inventory, 2)

        assert breaker_state(orders, "inventory") is BreakerState.CLOSED

    async def test_an_open_breaker_of_one_service_leaves_the_others_alone(
        self, services: dict[str, Served], orders: Platform, faults: FaultyNetwork
    ) -> None:
        faults.always = "503"
        await self.fail(http_inventory(orders), 3)
        assert await carts_client(orders).cart_of("u_nobody") is None
        assert breaker_state(orders, "inventory") is BreakerState.OPEN


class TestAnswersACallerCannotUse:
    async def test_a_4xx_the_protocol_does_not_name_keeps_its_status_and_code(self, orders: Platform) -> None:
        assert orders.remotes is not None
        remote = orders.remotes.get("inventory")
        with pytest.raises(Refused) as refused:
            await remote.call("POST", "/internal/inventory/available", body=b'{"productIds": 7}', idempotent=True)
        assert (refused.value.status, refused.value.code) == (400, "VALIDATION_FAILED")

    async def test_a_route_the_service_does_not_have_is_an_upstream_error(self, orders: Platform) -> None:
        assert orders.remotes is not None
        with pytest.raises(UpstreamError):
            await orders.remotes.get("inventory").call("GET", "/internal/inventory/nothing-here", idempotent=True)
