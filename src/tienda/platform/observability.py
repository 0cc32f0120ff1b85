"""Structured logs with a request id on every line, and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from json import dumps as json_dumps
from typing import Any, TextIO

import structlog
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry, Counter, Histogram
from structlog.tracebacks import ExceptionDictTransformer

_configured: tuple[bool, str] | None = None
_access: Any = None


class _StderrNow:
    """`sys.stderr` as it is when a line is written, not as it was when logging was configured:
    a test runner swaps it per test and closes its stand-in after, and logging is configured
    once per process (a log line after that test failed with "I/O operation on closed file")."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR: Any = _StderrNow()


def configure_logging(*, json: bool, level: str = "INFO") -> None:
    global _configured, _access
    if _configured == (json, level):
        return
    _configured = (json, level)
    numeric = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if json:
        # Tracebacks without local variables: locals hold secrets (keys, tokens, passwords).
        shared.append(
            structlog.processors.ExceptionRenderer(
                ExceptionDictTransformer(show_locals=False, max_frames=30, use_rich=False)
            )
        )
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    # The access log, one line per request: its fields, the request id among them, come as
    # arguments. In JSON it skips structlog's pipeline (see `JsonAccessLog`); on the console
    # its pipeline skips merging context variables (a copy of the request's whole context,
    # which cost the cheapest requests a quarter of their time) and exceptions.
    _access = (
        JsonAccessLog(_STDERR, enabled=numeric <= logging.INFO)
        if json
        else structlog.wrap_logger(
            structlog.PrintLogger(file=_STDERR),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(numeric),
            context_class=dict,
            cache_logger_on_first_use=True,
        )
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


class JsonAccessLog:
    """The access log in JSON: the line structlog's pipeline above writes (the fields, then
    `event`, `level` and `timestamp`), written without that pipeline: 7.4 us a line against
    structlog's 12.7 (timeit, one line of the shop's fields), on every request."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled

    def info(self, event: str, **fields: Any) -> None:
        if not self._enabled:
            return
        fields["event"] = event
        fields["level"] = "info"
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._stream.write(json_dumps(fields) + "\n")
        self._stream.flush()


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def native_telemetry() -> TelemetryConfig | None:
    """FastAPI's own OpenTelemetry instrumentation: FastAPI's default (on, with whatever
    providers are set up) when the process is configured for OpenTelemetry (an `OTEL_*` or
    `FASTAPI_OTEL_*` variable, as `opentelemetry-instrument` and exporters need), off
    otherwise. Off, FastAPI skips its check for providers, which reads environment variables
    on every request (3% of a cached read). The shop's own metrics are Prometheus's."""
    if any(name.startswith(("OTEL_", "FASTAPI_OTEL_")) for name in os.environ):
        return None
    return {"tracing": False, "metrics": False, "logs": False}


def access_logger() -> Any:
    """The access log (see `configure_logging`)."""
    if _access is None:
        configure_logging(json=False)
    return _access


class HttpMetrics:
    """Request count and latency per route template, method and status."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "tienda_http_requests",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tienda_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )

        # The series of each label set, found once: `labels()` takes a lock and builds its key
        # on every call (half of what observing a request cost).
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            labels = (method, route, str(status))
            series = self._series[method, route, status] = (
                self.requests.labels(*labels),
                self.latency.labels(*labels),
            )
        series[0].inc()
        series[1].observe(seconds)
