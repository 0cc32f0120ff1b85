"""The `tienda` command as a newcomer runs it: real processes, a real port, real files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.ports import free_port

TIENDA = str(Path(sys.executable).with_name("tienda"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIENDA_")}
    env.update(extra)
    return env


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIENDA, *args], capture_output=True, text=True, timeout=60, env=env or _env(), check=False)


class DevServer:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"dev-{self.port}.log"
        self.process = subprocess.Popen(
            [TIENDA, "dev", "--data-dir", str(data_dir), "--port", str(self.port)],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        # Generous: beside three other test processes on two cores it has taken more than 30 s.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
            if self.process.poll() is not None:
                break
        self.process.kill()  # a server still starting must not outlive the test
        self.process.wait()
        raise AssertionError(f"tienda dev did not come up:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "shop"


def _accounts(output: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(?:ADMIN|USER)\s+(\S+@\S+)\s+(\S+)$", output, flags=re.MULTILINE))


class TestDev:
    def test_first_start_prints_working_accounts_and_serves_the_api(self, data_dir: Path) -> None:
        server = DevServer(data_dir)
        try:
            output = server.output()
            accounts = _accounts(output)
            assert set(accounts) == {"admin@tienda.local", "demo@tienda.local"}
            assert f"{server.base}/docs" in output
            assert httpx.get(f"{server.base}/docs").status_code == 200

            login = httpx.post(
                f"{server.base}/api/users/login",
                json={"email": "admin@tienda.local", "password": accounts["admin@tienda.local"]},
            )
            assert login.status_code == 200
            token = login.json()["accessToken"]
            users = httpx.get(f"{server.base}/api/v1/users", headers={"Authorization": f"Bearer {token}"})
            assert users.json()["total"] == 2
            assert httpx.get(f"{server.base}/api/products").json()["total"] == 200
            assert httpx.get(f"{server.base}/api/products/search", params={"q": "sneakrs"}).json()["total"] > 0

            # An admin's edit is searchable within a second (the in-process relay feeds the index).
            auth = {"Authorization": f"Bearer {token}"}
            first = httpx.get(f"{server.base}/api/products/search", params={"q": "shoes"}).json()["items"][0]
            renamed = httpx.put(
                f"{server.base}/api/v1/products/{first['productId']}", json={"name": "Zephyr Glide"}, headers=auth
            )
            assert renamed.status_code == 200
            deadline = time.monotonic() + 1.0
            while httpx.get(f"{server.base}/api/products/search", params={"q": "zephyr"}).json()["total"] != 1:
                assert time.monotonic() < deadline, "the edit was not searchable within a second"
                time.sleep(0.02)

            # The in-process relay mails the reset code into the data dir.
            assert (
                httpx.post(f"{server.base}/api/users/forgot-password", json={"email": "demo@tienda.local"}).status_code
                == 202
            )

            def reset_mails() -> list[str]:
                texts = [path.read_text() for path in (data_dir / "mail").glob("*.eml")]
                return [t for t in texts if "password reset code" in t.lower()]

            deadline = time.monotonic() + 5
            while not reset_mails() and time.monotonic() < deadline:
                time.sleep(0.05)
            [mail] = reset_mails()
            assert "To: demo@tienda.local" in mail
        finally:
            server.stop()

        again = DevServer(data_dir)
        try:
            assert _accounts(again.output()) == accounts
        finally:
            again.stop()

    def test_create_admin_acts_on_the_shop_of_the_same_data_dir(self, data_dir: Path) -> None:
        created = _cli(
            "create-admin",
            "--email",
            "Boss@Example.com",
            "--password",
            "B0ss-password",
            env=_env(TIENDA_DATA_DIR=str(data_dir)),
        )
        assert created.returncode == 0, created.stderr
        assert "Admin created: u_" in created.stdout

        server = DevServer(data_dir)
        try:
            login = httpx.post(
                f"{server.base}/api/v1/users/login", json={"email": "boss@example.com", "password": "B0ss-password"}
            )
            assert login.status_code == 200
            me = httpx.get(
                f"{server.base}/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"}
            )
            assert me.json()["role"] == "ADMIN"
        finally:
            server.stop()

        duplicate = _cli(
            "create-admin", "--email", "boss@example.com", "--password", "another-pass", "--data-dir", str(data_dir)
        )
        assert duplicate.returncode == 1
        assert "already exists" in duplicate.stderr


class TestCommands:
    def test_migrate_creates_each_module_database_in_the_data_dir(self, data_dir: Path) -> None:
        result = _cli("migrate", "--data-dir", str(data_dir))

        assert result.returncode == 0, result.stderr
        assert (data_dir / "users.db").exists()
        assert (data_dir / "catalog.db").exists()
        assert (data_dir / "search.db").exists()

    def test_seed_fills_the_catalog_and_the_search_index_and_reindex_rebuilds_it(self, data_dir: Path) -> None:
        seeded = _cli("seed", "--products", "300", "--seed", "7", "--data-dir", str(data_dir))
        assert seeded.returncode == 0, seeded.stderr
        assert re.search(r"Added 300 products in [\d.]+ s; search index rebuilt \(300 products\)", seeded.stdout)
        [before] = (data_dir / "search-index").glob("gen-*")

        rebuilt = _cli("reindex", "--data-dir", str(data_dir))
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert re.search(r"Indexed 300 published products in [\d.]+ s", rebuilt.stdout)
        assert (data_dir / "search-index" / "current").resolve().name > before.name

        server = DevServer(data_dir)
        try:
            assert httpx.get(f"{server.base}/api/products/search").json()["total"] == 300
        finally:
            server.stop()

    def test_create_admin_refuses_a_short_password(self, data_dir: Path) -> None:
        result = _cli("create-admin", "--email", "a@example.com", "--password", "short", "--data-dir", str(data_dir))

        assert result.returncode == 2
        assert "Invalid input" in result.stderr
        assert not (data_dir / "users.db").exists()

    def test_openapi_prints_the_document_as_yaml(self) -> None:
        result = _cli("openapi")

        document = yaml.safe_load(result.stdout)
        assert document["info"]["title"] == "Tienda"
        assert "/api/v1/users/login" in document["paths"]

    @pytest.mark.parametrize(
        "command", ["dev", "serve", "worker", "migrate", "create-admin", "openapi", "seed", "reindex"]
    )
    def test_every_command_explains_itself(self, command: str) -> None:
        result = _cli(command, "--help")

        assert result.returncode == 0
        assert "Usage:" in result.stdout
        assert "--data-dir" in result.stdout or command == "openapi"
