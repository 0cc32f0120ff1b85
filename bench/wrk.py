"""Runs wrk with one of the Lua scripts in bench/lua and reads the JSON line its `done()`
prints (latency percentiles, wrk's socket errors, non-2xx answers by status code)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bench.measure import Measurement, run_tool

LUA_DIR = Path(__file__).parent / "lua"
MARKER = "BENCH_JSON "


class WrkError(RuntimeError):
    pass


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse_output(output: str) -> dict[str, Any]:
    """The summary printed by lib.lua's done(); raises WrkError with wrk's output otherwise."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            summary: dict[str, Any] = json.loads(line[len(MARKER) :])
            return summary
    raise WrkError(f"wrk printed no summary:\n{output[-2000:]}")


def to_measurement(summary: dict[str, Any], *, tool_cpu_pct: float | None = None) -> Measurement:
    kinds = {name: int(n) for name, n in summary["errors"].items() if name != "status" and n}
    if summary.get("counted"):
        kinds.update({f"http_{code}": int(n) for code, n in summary.get("codes", {}).items()})
    elif summary["errors"].get("status"):
        # Without the response() hook wrk only knows that the status was >= 400.
        kinds["http_4xx_5xx"] = int(summary["errors"]["status"])
    return Measurement(
        requests=int(summary["requests"]),
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p95_ms=summary["p95_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=sum(kinds.values()),
        error_kinds=kinds,
        tool_cpu_pct=tool_cpu_pct,
    )


def run(
    url: str,
    script: str,
    *,
    concurrency: int,
    duration: float,
    threads: int = 1,
    data: Path | None = None,
    timeout: float = 10.0,
) -> Measurement:
    """`script` is a file name in bench/lua; `data` the tab-separated rows it reads."""
    wrk = wrk_path()
    if wrk is None:
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    threads = max(1, min(threads, concurrency))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    env = os.environ | {
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_DATA": str(data) if data else "",
        "BENCH_THREADS": str(threads),
    }
    result = run_tool(command, env=env)
    if result.returncode != 0:
        raise WrkError(f"wrk exited with {result.returncode}:\n{result.output[-2000:]}")
    return to_measurement(parse_output(result.output), tool_cpu_pct=result.cpu_pct)
