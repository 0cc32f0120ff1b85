"""The container image's pieces: deploy/Dockerfile (read: Docker cannot run on this machine,
so it is not built here), and the scripts it copies in, which are run for real: the
entrypoint (with a stand-in `tienda`), the health check, and the pruning of dev packages
(against this virtualenv)."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.gateway import free_port, stub_services
from tests.deploy.routing import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - what a container listens on


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, rest in instructions():
        if word == "FROM":
            current = []
            result[rest.split(" AS ")[-1].strip()] = current
        current.append((word, rest))
    return result


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the Dockerfile ---------------------------------------------------------------------------


def test_the_image_is_built_in_two_stages_from_the_hashed_lock() -> None:
    built = stages()
    assert list(built) == ["builder", "runtime"]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in [f"{w} {r}" for w, r in instructions()]
    builder = " ".join(rest for _, rest in built["builder"])
    assert "pip install --require-hashes --no-deps -r /build/requirements.lock" in builder
    assert "prune_dev_packages.py" in builder
    runtime = built["runtime"]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert not any(word == "RUN" and "pip install" in rest for word, rest in runtime)


def test_the_runtime_runs_as_a_non_root_user_with_a_health_check() -> None:
    runtime = stages()["runtime"]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users == ["10001:10001"]
    [healthcheck] = [rest for word, rest in runtime if word == "HEALTHCHECK"]
    assert 'CMD ["python", "/app/healthcheck.py", "auto"]' in healthcheck
    [entrypoint] = [rest for word, rest in runtime if word == "ENTRYPOINT"]
    assert entrypoint == '["/usr/bin/tini", "--", "/app/entrypoint.sh"]'
    assert ("CMD", '["serve"]') in runtime
    assert ("ARG", 'TIENDA_SERVICE=""') in runtime
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    assert "TIENDA_SERVICE=${TIENDA_SERVICE}" in env
    assert "TIENDA_ENV=production" in env


def test_everything_the_dockerfile_copies_exists_and_is_in_the_build_context() -> None:
    kept = [
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for word, rest in instructions():
        if word != "COPY" or "--from=" in rest:
            continue
        *sources, _ = [part for part in rest.split() if not part.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert any(source == k or source.startswith(k + "/") for k in kept), f"{source} is ignored"


# -- the entrypoint ---------------------------------------------------------------------------


@pytest.fixture
def fake_tienda(tmp_path: Path) -> Path:
    """A `tienda` that prints its arguments, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tienda"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    return bin_dir


def entrypoint(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("TIENDA_") and k not in ("PORT", "WEB_CONCURRENCY")
    }
    return subprocess.run(
        ["sh", str(DEPLOY / "docker" / "entrypoint.sh"), *args],
        env={**clean, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_entrypoint_serves_the_chosen_module_by_default(fake_tienda: Path) -> None:
    assert entrypoint(fake_tienda, TIENDA_SERVICE="orders").stdout.split() == (
        ["serve", "--host", ANY_INTERFACE, "--port", "8000", "--workers", "2", "--service", "orders"]
    )
    assert entrypoint(fake_tienda, "serve", PORT="9000", WEB_CONCURRENCY="4").stdout.split() == (
        ["serve", "--host", ANY_INTERFACE, "--port", "9000", "--workers", "4"]
    )


def test_the_entrypoint_runs_workers_migrations_and_other_commands(fake_tienda: Path) -> None:
    assert entrypoint(fake_tienda, "worker", TIENDA_SERVICE="search").stdout.split() == [
        "worker",
        "--service",
        "search",
    ]
    assert entrypoint(fake_tienda, "migrate", TIENDA_SERVICE="users,catalog").stdout.split() == (
        ["migrate", "--service", "users", "--service", "catalog"]
    )
    assert entrypoint(fake_tienda, "seed", "--products", "5", TIENDA_SERVICE="x").stdout.split() == (
        ["seed", "--products", "5"]
    )


def test_the_entrypoint_refuses_a_module_name_that_is_not_one(fake_tienda: Path) -> None:
    done = entrypoint(fake_tienda, "serve", TIENDA_SERVICE="orders;rm -rf /")
    assert done.returncode == 64
    assert done.stdout == ""


def test_the_real_cli_takes_the_options_the_entrypoint_passes() -> None:
    from typer.testing import CliRunner

    from tienda.cli import app

    runner = CliRunner()
    for command, options in (
        ("serve", ["--service", "--host", "--port", "--workers"]),
        ("worker", ["--service"]),
        ("migrate", ["--service"]),
    ):
        done = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert done.exit_code == 0, done.output
        for option in options:
            assert option in done.output, (command, option)


# -- the health check -------------------------------------------------------------------------


def healthcheck(mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIENDA_") and k != "PORT"}
    return subprocess.run(
        [sys.executable, str(DEPLOY / "docker" / "healthcheck.py"), mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_http_check_asks_healthz() -> None:
    with stub_services(("users",)) as upstreams:
        port = upstreams["users"].rsplit(":", 1)[1]
        assert healthcheck("http", PORT=port).returncode == 0
    closed = healthcheck("http", PORT=str(free_port()))
    assert closed.returncode == 1
    assert "unhealthy" in closed.stderr


def test_the_worker_check_needs_its_database_the_broker_and_redis(listening: int) -> None:
    up = {
        "TIENDA_SERVICE": "orders",
        "TIENDA_ORDERS_DATABASE_URL": f"postgresql+asyncpg://u:p@127.0.0.1:{listening}/orders",
        "TIENDA_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{listening}/",
        "TIENDA_REDIS_URL": f"redis://127.0.0.1:{listening}/0",
    }
    assert healthcheck("worker", **up).returncode == 0
    down = healthcheck("worker", **{**up, "TIENDA_BROKER_URL": f"amqp://127.0.0.1:{free_port()}/"})
    assert down.returncode == 1
    assert "broker at 127.0.0.1" in down.stderr
    # Another module's database is not this worker's business.
    other = {**up, "TIENDA_USERS_DATABASE_URL": f"postgresql+asyncpg://127.0.0.1:{free_port()}/users"}
    assert healthcheck("worker", **other).returncode == 0


def test_the_automatic_check_goes_by_what_the_container_runs() -> None:
    check = _load(DEPLOY / "docker" / "healthcheck.py", "tienda_healthcheck")
    calls: list[str] = []
    check.check_http = lambda: calls.append("http")
    check.check_worker = lambda: calls.append("worker")
    for argv, expected in (
        (["/usr/bin/tini", "--", "/app/entrypoint.sh", "worker"], ["worker"]),
        (["/opt/venv/bin/python", "/opt/venv/bin/tienda", "serve", "--port", "8000"], ["http"]),
        (["/usr/bin/tini", "--", "/app/entrypoint.sh", "migrate"], []),
    ):
        calls.clear()
        check.running = lambda argv=argv: argv
        assert check.main(["healthcheck.py"]) in (0, 1)
        assert calls == expected, argv


# -- the dev packages left out of the image ---------------------------------------------------


def test_the_image_keeps_what_tienda_runs_on_and_drops_the_dev_tools() -> None:
    prune = _load(DEPLOY / "docker" / "prune_dev_packages.py", "tienda_prune")
    keep = prune.runtime_closure()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = {prune.canonical(re.split(r"[\[<>=!~ ;]", dep, maxsplit=1)[0]) for dep in project["dependencies"]}
    assert direct <= keep
    # The extras asked for: uvicorn[standard] (the serve command's uvloop and httptools) and
    # sqlalchemy[asyncio].
    assert {"tienda", "uvloop", "httptools", "greenlet"} <= keep
    dev = {
        prune.canonical(re.split(r"[\[<>=!~ ;]", dep, maxsplit=1)[0]) for dep in project["optional-dependencies"]["dev"]
    }
    assert (dev - direct).isdisjoint(keep), (dev - direct) & keep
    assert {"pytest", "ruff", "mypy", "import-linter"}.isdisjoint(keep)
