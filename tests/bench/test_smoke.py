"""The bench harness still works: its parsers, its report, its registry, its asyncio client
against the real app, its loader on a real PostgreSQL, and wrk against a real server for a
second. Nothing here is about speed: no figure is asserted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import argon2
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench import ceilings, data, flows, measure, results, run, scenarios, servers, wrk
from tests import backends
from tests.conftest import Shop, shop_settings
from tienda.app import ALL_MODULES
from tienda.platform.runtime import Platform

# One import style for the harness: ruff would take `bench.x` for a third party (tests/bench
# makes it guess that `bench` is first-party only at the top level).
Measurement = measure.Measurement
Row = results.Row
NO_SERVER = results.NO_SERVER
session_flow = scenarios.users.session_flow

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8000/
  1 threads and 8 connections
BENCH_JSON {"requests":1200,"duration_us":2000000,"bytes":90000,"p50_us":1500,"p95_us":4000,"p99_us":9000,\
"max_us":12000,"mean_us":1800.5,"errors":{"connect":0,"read":2,"write":0,"status":5,"timeout":1},\
"counted":true,"non2xx":7,"codes":{"401":5,"302":2}}
Requests/sec:    600.00
"""

KNOWN_CEILINGS = {"hello", "argon2", "pg_hot_row", "redis_get", "redis_set", "redis_eval", "redis_reserve", None}


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        # A load tool, not a server of the shop: the benchmark needs it, the test command does not
        # install it, so its absence skips this smoke test even on CI.
        pytest.skip(f"{tool} is not installed (Debian: apt-get install {tool}); only `make bench` needs it")
    return found


class TestRegistry:
    def test_every_scenario_is_runnable_as_declared(self) -> None:
        names = [s.name for s in scenarios.SCENARIOS]

        assert len(names) == len(set(names))
        assert {"login", "get_profile"} <= set(names)
        for scenario in scenarios.SCENARIOS:
            assert scenario.ceiling in KNOWN_CEILINGS, scenario.name
            if scenario.lua is not None:
                assert (wrk.LUA_DIR / scenario.lua).is_file(), scenario.lua

    def test_selects_by_name_and_refuses_unknown_names(self) -> None:
        assert [s.name for s in scenarios.select(["get_profile"])] == ["get_profile"]
        assert scenarios.select(None) == scenarios.SCENARIOS
        with pytest.raises(ValueError, match="unknown scenario"):
            scenarios.select(["no_such_scenario"])

    @pytest.mark.parametrize(
        ("named", "expected", "split"),
        [
            ([], [s.name for s in scenarios.SCENARIOS], True),
            (["split_checkout"], [], True),
            (["checkout", "split_checkout"], ["checkout"], True),
            (["checkout"], ["checkout"], False),
        ],
    )
    def test_the_split_deployment_is_measured_with_everything_or_when_named(
        self, named: list[str], expected: list[str], split: bool
    ) -> None:
        cfg = run.config_of(run.parse_args([arg for name in named for arg in ("--scenario", name)]))

        assert ([s.name for s in cfg.scenarios], cfg.split) == (expected, split)


class TestParsers:
    def test_reads_wrk_summary_with_status_codes_counted_by_lua(self) -> None:
        m = wrk.to_measurement(wrk.parse_output(WRK_OUTPUT), tool_cpu_pct=40.0)

        assert (m.requests, m.seconds, m.rps) == (1200, 2.0, 600.0)
        assert (m.p50_ms, m.p95_ms, m.p99_ms) == (1.5, 4.0, 9.0)
        assert m.error_kinds == {"read": 2, "timeout": 1, "http_401": 5, "http_302": 2}
        assert m.errors == 10

    def test_without_the_lua_count_uses_wrks_own_status_errors(self) -> None:
        summary = wrk.parse_output(WRK_OUTPUT.replace('"counted":true', '"counted":false'))

        assert wrk.to_measurement(summary).error_kinds == {"read": 2, "timeout": 1, "http_4xx_5xx": 5}

    def test_wrk_output_without_summary_is_an_error(self) -> None:
        with pytest.raises(wrk.WrkError, match="no summary"):
            wrk.parse_output("unable to connect to 127.0.0.1:1 Connection refused")

    def test_reads_redis_benchmark_csv(self) -> None:
        output = (
            '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
            '"p99_latency_ms","max_latency_ms"\n"GET","50000.00","0.3","0.1","0.25","0.5","0.9","2.0"\n'
        )
        m = ceilings.parse_redis_csv(output, requests=100_000)["redis_get"]

        assert (m.requests, m.seconds, m.p50_ms, m.p99_ms) == (100_000, 2.0, 0.25, 0.9)

    def test_reads_pgbench_log_and_summary(self, tmp_path: Path) -> None:
        (tmp_path / "pgbench_c2.1").write_text("0 0 1000 0 1 2\n1 0 3000 0 1 2\n0 1 failed 0 1 2\n")
        latencies, failed = ceilings._pgbench_log(tmp_path.glob("pgbench_c2.*"))
        output = "number of transactions actually processed: 2\ntps = 4.0 (without initial connection time)\n"

        m = ceilings._pgbench_measurement(output, latencies, failed, 5.0)

        assert (m.requests, m.seconds, m.p50_ms, m.p99_ms, m.errors) == (2, 0.5, 1.0, 3.0, 1)


def _row(name: str, rps: float, *, ceiling: bool = False, server: str = "uvicorn", p99: float = 10.0) -> Row:
    m = Measurement(requests=int(rps * 10), seconds=10.0, p50_ms=1.0, p95_ms=5.0, p99_ms=p99)
    return Row.of(name, server, 32, "wrk", m, is_ceiling=ceiling, ceiling=None if ceiling else "hello")


class TestReport:
    def test_scenarios_get_their_ratio_to_the_ceiling_at_the_same_server_and_concurrency(self) -> None:
        rows = [_row("hello", 20_000, ceiling=True), _row("get_profile", 2_000), _row("get_profile", 9, server="x")]

        results.attach_ratios(rows)

        assert [r.ratio for r in rows] == [None, 0.1, None]
        assert "0.100 of hello" in results.table(rows)

    def test_compare_prints_ratios_of_rows_present_in_both_runs(self, tmp_path: Path) -> None:
        a = results.save(tmp_path / "a.json", rows=[_row("login", 10), _row("gone", 1)], meta={"elapsed_s": 1})
        b = results.save(tmp_path / "b.json", rows=[_row("login", 20, p99=5.0)], meta={})

        text = results.compare(results.load(a), results.load(b))

        assert json.loads(a.read_text())["elapsed_s"] == 1
        line = next(line for line in text.splitlines() if "login" in line)
        assert [cell.strip() for cell in line.strip("|").split("|")][3:] == [
            "10.0", "20.0", "2.000", "10.00", "5.00", "0.500"
        ]  # fmt: skip
        assert "gone" not in text

    def test_ceilings_without_a_server_are_found_by_any_server(self) -> None:
        pg = Row.of("pg_hot_row", NO_SERVER, 32, "pgbench", Measurement(1000, 1.0, 1, 2, 3), is_ceiling=True)
        reserve = Row.of("reserve", "granian", 32, "wrk", Measurement(250, 1.0, 1, 2, 3), ceiling="pg_hot_row")

        argon2 = Row.of("argon2", NO_SERVER, 2, "python", Measurement(10, 1.0, 1, 2, 3), is_ceiling=True)
        login = Row.of("login", "uvicorn", 8, "wrk", Measurement(8, 1.0, 1, 2, 3), ceiling="argon2")

        results.attach_ratios([pg, reserve, argon2, login])

        assert (reserve.ratio, login.ratio) == (0.25, 0.8)

    def test_the_worker_and_the_broker_are_columns_of_their_own_not_other(self) -> None:
        cpu = {
            "machine": 190.0,
            "server": 70.0,
            "server_processes": [40.0, 30.0],
            "worker": 60.0,
            "postgres": 30.0,
            "redis-server": 2.0,
            "beam.smp": 15.0,
        }
        row = Row.of("checkout", "uvicorn", 20, "asyncio", Measurement(270, 10.0, 1, 2, 3, tool_cpu_pct=6.0), cpu=cpu)

        assert row.cpu["other"] == 7.0
        cells = [cell.strip() for cell in results.table([row]).splitlines()[2].strip("|").split("|")]
        assert cells[10:16] == ["70 (40+30)", "60", "30", "2", "15", "7"]


class TestAsyncioClient:
    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_runs_the_session_flow_against_the_real_app(self, shop: Shop) -> None:
        await shop.register("flow@example.com", "P@ssw0rd!")
        await shop.register("other@example.com", "P@ssw0rd!")
        rows = [("flow@example.com", "P@ssw0rd!"), ("other@example.com", "wrong-password")]

        # Long enough for a sixth wrong password on a loaded machine (0.5 s saw only five once,
        # with the whole suite running on two cores).
        m = await flows.run_flow([shop.client], session_flow, rows, concurrency=2, duration=2.0)

        assert m.requests > 0
        assert m.errors > 0
        # The wrong password fails, and after five failures the account is throttled.
        assert m.error_kinds["login_http_401_INVALID_CREDENTIALS"] == 5
        assert set(m.error_kinds) == {"login_http_401_INVALID_CREDENTIALS", "login_http_429_RATE_LIMITED"}


class TestLoader:
    async def test_loads_the_same_users_every_time_with_a_working_password(self, tmp_path: Path) -> None:
        url, admin = await backends.create_database("postgres")
        settings = shop_settings(tmp_path, url)
        platform = Platform.build(settings, ALL_MODULES)
        try:
            await platform.migrate()
            users = data.make_users(25)
            await data.load_users(url, users, await data.production_hash(settings), batch=10)
            engine = create_async_engine(url)
            async with engine.connect() as conn:
                stored = (await conn.execute(text("SELECT user_id, email, password_hash FROM users"))).all()
            await engine.dispose()
        finally:
            await platform.close()
            await backends.drop_database("postgres", url, admin)

        assert data.make_users(25) == users
        assert sorted((r.user_id, r.email) for r in stored) == sorted((u.user_id, u.email) for u in users)
        assert argon2.PasswordHasher().verify(stored[0][2], data.PASSWORD)


class TestWrkOnARealServer:
    def test_one_second_of_wrk_against_the_hello_app(self) -> None:
        need("wrk")
        port = servers.free_port()
        with servers.Server(servers.hello_command("uvicorn", port, 1), port=port, log=Path("/dev/null")) as hello:
            hello.wait_ready("/", timeout=10)
            m = wrk.run(hello.base_url + "/", "hello.lua", concurrency=4, duration=1)

        assert m.requests > 0
        assert m.errors == 0
