"""The HTTP plumbing every route shares: envelope, request ids, body limit, ops routes."""

from __future__ import annotations

import gc
import json
import os

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Shop
from tienda.app import create_app
from tienda.platform import web
from tienda.platform.observability import HttpMetrics, configure_logging, native_telemetry
from tienda.platform.runtime import YOUNG_COLLECTION_THRESHOLD


@pytest.fixture
def backend() -> str:
    """The plumbing is the same on every database; SQLite is enough."""
    return "sqlite"


ENVELOPE_KEYS = {"timestamp", "status", "error", "message", "path", "code", "requestId"}


class TestErrorEnvelope:
    async def test_unknown_route_is_a_404_envelope(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/nowhere")

        assert response.status_code == 404
        body = response.json()
        assert body.keys() >= ENVELOPE_KEYS
        assert body["status"] == 404
        assert body["error"] == "Not Found"
        assert body["code"] == "NOT_FOUND"
        assert body["path"] == "/api/v1/nowhere"
        assert body["message"] == "No route for GET /api/v1/nowhere"

    async def test_wrong_method_is_a_405_envelope_with_allow(self, shop: Shop) -> None:
        response = await shop.client.delete("/api/v1/users/login")

        assert response.status_code == 405
        assert response.json()["code"] == "METHOD_NOT_ALLOWED"
        assert response.headers["allow"] == "POST"

    async def test_unhandled_error_is_a_500_without_internals(self, capfd: pytest.CaptureFixture[str]) -> None:
        configure_logging(json=True)
        app = FastAPI()
        metrics = HttpMetrics()
        web.install(app, metrics=metrics, max_body_bytes=1024)

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("SELECT secret FROM vault -- internal detail")

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/boom", headers={"X-Request-ID": "req-500-test"})

        assert response.status_code == 500
        body = response.json()
        assert body["code"] == "INTERNAL_ERROR"
        assert body["message"] == "Internal server error"
        assert body["requestId"] == "req-500-test"
        assert "SELECT" not in response.text
        assert "Traceback" not in response.text
        logged = capfd.readouterr().err
        assert "req-500-test" in logged
        assert "SELECT secret FROM vault" in logged
        assert '"event": "unhandled_error"' in logged
        assert '"locals"' not in logged  # locals can hold secrets


class TestRequestId:
    async def test_a_given_request_id_is_echoed(self, shop: Shop) -> None:
        response = await shop.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    async def test_a_missing_or_unsafe_request_id_is_replaced(self, shop: Shop) -> None:
        generated = await shop.client.get("/healthz")
        unsafe = await shop.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})

        assert len(generated.headers["x-request-id"]) == 32
        assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
        assert len(unsafe.headers["x-request-id"]) == 32

    async def test_generated_ids_are_distinct_hex(self, shop: Shop) -> None:
        ids = [(await shop.client.get("/healthz")).headers["x-request-id"] for _ in range(200)]

        assert len(set(ids)) == 200
        assert all(int(i, 16) >= 0 and len(i) == 32 for i in ids)

    def test_a_forked_process_draws_other_ids_than_its_parent(self) -> None:
        """The ids come from a PRNG: a forked child must not repeat its parent's sequence."""
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            os.write(write, web._new_request_id().encode())
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(child, 0)
        theirs = os.read(read, 64).decode()
        os.close(read)

        assert status == 0
        assert len(theirs) == 32
        assert web._new_request_id() != theirs

    async def test_each_request_has_an_access_log_line_with_its_id(self, capfd: pytest.CaptureFixture[str]) -> None:
        configure_logging(json=True)
        app = FastAPI()
        web.install(app, metrics=HttpMetrics(), max_body_bytes=1024)

        @app.get("/items/{itemId}")
        async def item(itemId: str) -> dict[str, str]:
            return {"itemId": itemId}

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await client.get("/items/i_1", headers={"X-Request-ID": "trace-access"})

        lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"event": "request"' in line]
        [line] = [entry for entry in lines if entry.get("request_id") == "trace-access"]
        assert {k: line[k] for k in ("method", "path", "route", "status", "level")} == {
            "method": "GET",
            "path": "/items/i_1",
            "route": "/items/{itemId}",
            "status": 200,
            "level": "info",
        }
        assert line["timestamp"].endswith("Z")
        assert isinstance(line["ms"], float)
        assert list(line)[-3:] == ["event", "level", "timestamp"]  # as structlog's JSONRenderer writes it

    async def test_no_access_log_below_its_level(self, capfd: pytest.CaptureFixture[str]) -> None:
        configure_logging(json=True, level="WARNING")
        try:
            app = FastAPI()
            web.install(app, metrics=HttpMetrics(), max_body_bytes=1024)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                response = await client.get("/nowhere", headers={"X-Request-ID": "trace-quiet"})
        finally:
            configure_logging(json=True)

        assert response.status_code == 404
        assert "trace-quiet" not in capfd.readouterr().err

    async def test_errors_carry_the_request_id_in_body_and_header(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/users/me", headers={"X-Request-ID": "trace-me"})

        assert response.status_code == 401
        assert response.headers["x-request-id"] == "trace-me"
        assert response.json()["requestId"] == "trace-me"


class TestBodyLimit:
    async def test_a_declared_oversized_body_is_refused_before_reading(self, shop: Shop) -> None:
        big = b'{"email": "' + b"a" * (10 * 1024 * 1024) + b'"}'
        response = await shop.client.post(
            "/api/v1/users/register", content=big, headers={"content-type": "application/json"}
        )

        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
        assert await shop.scalar("users", "SELECT count(*) FROM users") == 0

    async def test_a_streamed_oversized_body_is_refused(self, shop: Shop) -> None:
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"x" * 65536

        response = await shop.client.post(
            "/api/v1/users/register", content=chunks(), headers={"content-type": "application/json"}
        )

        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


class TestOperations:
    async def test_healthz(self, shop: Shop) -> None:
        response = await shop.client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_reports_each_dependency(self, shop: Shop) -> None:
        response = await shop.client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "checks": {
                "database:users": "ok",
                "database:search": "ok",
                "database:catalog": "ok",
                "database:carts": "ok",
                "database:inventory": "ok",
                "database:orders": "ok",
                "database:payments": "ok",
                "database:notifications": "ok",
            },
        }

    async def test_metrics_count_requests_per_route_template_and_status(self, shop: Shop) -> None:
        await shop.client.get("/api/v1/users/u_doesnotexist")
        await shop.client.get("/api/v1/users/u_doesnotexist")

        text = (await shop.client.get("/metrics")).text

        assert 'tienda_http_requests_total{method="GET",route="/api/v1/users/{userId}",status="401"} 2.0' in text
        assert (
            'tienda_http_request_duration_seconds_count{method="GET",route="/api/v1/users/{userId}",status="401"} 2.0'
            in text
        )


class TestNativeTelemetry:
    def test_off_unless_the_process_is_set_up_for_opentelemetry(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in [n for n in os.environ if n.startswith(("OTEL_", "FASTAPI_OTEL_"))]:
            monkeypatch.delenv(name)
        assert native_telemetry() == {"tracing": False, "metrics": False, "logs": False}

        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        assert native_telemetry() is None  # FastAPI's default: on, with the configured providers


class TestCollectorAfterStartup:
    async def test_startup_freezes_what_it_made_and_young_objects_wait_for_ten_thousand(self, shop: Shop) -> None:
        app = create_app(shop.settings, platform=shop.platform)
        before = gc.get_threshold()
        try:
            gc.unfreeze()
            async with app.router.lifespan_context(app):
                assert gc.get_freeze_count() > 0
                assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
        finally:
            gc.unfreeze()
            gc.set_threshold(*before)
