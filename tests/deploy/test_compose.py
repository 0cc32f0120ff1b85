"""deploy/compose.yaml: the split deployment for Docker Compose.

Docker cannot run on this machine, so the file is checked as data (PyYAML resolves its
anchors and merge keys as Compose does): every module has its migrate job, API and worker,
with health checks and a database of its own; the gateway fronts every API. The PostgreSQL
init script it mounts is run for real against this machine's server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url

from tests import backends
from tests.deploy.routing import DEPLOY, SERVICES

COMPOSE = DEPLOY / "compose.yaml"
TIENDA = str(Path(sys.executable).with_name("tienda"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def services_of(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def database_urls(service: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in service["environment"].items() if k.endswith("_DATABASE_URL")}


def interpolated(value: str) -> str:
    """A Compose value with ${VAR...} replaced as if each VAR were set to `VAR`."""
    return re.sub(r"\$\{([A-Z_]+)[^}]*\}", lambda m: m.group(1).lower(), value)


def test_every_module_has_a_migrate_job_an_api_and_a_worker(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for module in SERVICES:
        assert services[f"migrate-{module}"]["command"] == ["migrate"]
        assert services[f"migrate-{module}"]["restart"] == "no"
        assert services[module]["command"] == ["serve"]
        assert services[f"{module}-worker"]["command"] == ["worker"]
        for name in (f"migrate-{module}", module, f"{module}-worker"):
            assert services[name]["environment"]["TIENDA_SERVICE"] == module, name
            assert services[name]["environment"]["TIENDA_ENV"] == "production", name
            assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_apis_and_workers_have_health_checks(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for module in SERVICES:
        assert services[module]["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py", "http"]
        assert services[f"{module}-worker"]["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py", "worker"]
    for name in ("postgres", "redis", "rabbitmq", "mailpit", "gateway"):
        assert services[name]["healthcheck"]["test"], name


def test_each_module_has_its_own_database_and_role(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for module in SERVICES:
        for name in (f"migrate-{module}", module, f"{module}-worker"):
            urls = database_urls(services[name])
            assert list(urls) == [f"TIENDA_{module.upper()}_DATABASE_URL"], name
            url = make_url(interpolated(urls[f"TIENDA_{module.upper()}_DATABASE_URL"]))
            assert (url.drivername, url.host, url.port) == ("postgresql+asyncpg", "postgres", 5432)
            assert (url.username, url.database) == (f"tienda_{module}", f"tienda_{module}")
    postgres = services["postgres"]
    assert sorted(postgres["environment"]["TIENDA_DATABASES"].split()) == sorted(SERVICES)
    assert "./postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-tienda-databases.sh:ro" in postgres["volumes"]


def test_apis_and_workers_start_after_their_migration_and_the_infrastructure(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for module in SERVICES:
        assert services[f"migrate-{module}"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        for name in (module, f"{module}-worker"):
            assert services[name]["depends_on"] == {
                f"migrate-{module}": {"condition": "service_completed_successfully"},
                "redis": {"condition": "service_healthy"},
                "rabbitmq": {"condition": "service_healthy"},
            }


def test_services_share_the_broker_redis_and_each_others_addresses(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    for module in SERVICES:
        env = services[module]["environment"]
        assert interpolated(env["TIENDA_BROKER_URL"]) == "amqp://tienda:tienda_broker_password@rabbitmq:5672/"
        assert env["TIENDA_REDIS_URL"] == "redis://redis:6379/0"
        for other in SERVICES:
            assert env[f"TIENDA_{other.upper()}_URL"] == f"http://{other}:8000"


def test_the_search_index_and_the_uploaded_images_are_shared_volumes(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    assert "search-index:/data/search-index" in services["search"]["volumes"]
    assert "search-index:/data/search-index" in services["search-worker"]["volumes"]
    assert "catalog-media:/data/media" in services["catalog"]["volumes"]
    assert {"search-index", "catalog-media", "postgres-data"} <= set(compose["volumes"])


def test_the_gateway_fronts_every_api_and_is_the_only_public_port(compose: dict[str, Any]) -> None:
    services = services_of(compose)
    gateway = services["gateway"]
    assert gateway["ports"] == ["${TIENDA_GATEWAY_PORT:-8080}:8080"]
    assert gateway["environment"]["TIENDA_GATEWAY_LISTEN"] == "8080"
    for module in SERVICES:
        assert gateway["environment"][f"TIENDA_{module.upper()}_UPSTREAM"] == f"{module}:8000"
        assert gateway["depends_on"][module] == {"condition": "service_healthy"}
    for mount in gateway["volumes"]:
        source = mount.split(":")[0]
        assert (DEPLOY / source).exists(), mount
    assert "-c" in gateway["command"]
    assert gateway["command"][gateway["command"].index("-c") + 1] == "/etc/nginx/nginx.conf"
    published = {
        name: service["ports"] for name, service in services.items() if service.get("ports") and name != "gateway"
    }
    # Only the operators' UIs besides the gateway, and only on the loopback interface.
    assert all(port.startswith("127.0.0.1:") for ports in published.values() for port in ports), published


def test_every_required_variable_is_in_the_example_env_file() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "compose.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert required
    assert required <= example
    bare = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert bare <= required, "a variable used without a default must be required somewhere"


# -- the PostgreSQL init script, for real ------------------------------------------------------


def test_the_init_script_makes_a_database_per_service_that_only_its_role_reaches(tmp_path: Path) -> None:
    admin = make_url(backends.url_of("postgres"))
    psql = shutil.which("psql")
    if psql is None:
        message = "psql is not installed (apt-get install -y postgresql-client)"
        if backends.ON_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    prefix = f"tienda_t{uuid.uuid4().hex[:8]}_"
    pg_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "TIENDA_"))},
        "PGHOST": admin.host or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGUSER": admin.username or "postgres",
        **({"PGPASSWORD": admin.password} if admin.password else {}),
    }
    script_env = {
        **pg_env,
        "TIENDA_DB_PASSWORD": "s3cret-pw",
        "TIENDA_DATABASES": "users catalog",
        "TIENDA_DB_PREFIX": prefix,
    }

    def sql(statement: str, *, user: str | None = None, database: str = "postgres") -> subprocess.CompletedProcess[str]:
        env = {**pg_env, **({"PGUSER": user, "PGPASSWORD": "s3cret-pw"} if user else {})}
        return subprocess.run(
            [psql, "-X", "-q", "-t", "-A", "-d", database, "-c", statement],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        for _ in range(2):  # idempotent
            done = subprocess.run(
                ["sh", str(DEPLOY / "postgres" / "init-databases.sh")],
                env=script_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode != 0 and "connect" in done.stderr:
                backends.unreachable("postgres", RuntimeError(done.stderr))
            assert done.returncode == 0, done.stderr
        owners = sql(
            f"SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE '{prefix}%' ORDER BY 1"
        )
        assert owners.stdout.split() == [f"{prefix}catalog={prefix}catalog", f"{prefix}users={prefix}users"]

        # The service migrates its own database as its own role ...
        users_url = admin.set(username=f"{prefix}users", password="s3cret-pw", database=f"{prefix}users")
        migrated = subprocess.run(
            [TIENDA, "migrate", "--service", "users", "--data-dir", str(tmp_path)],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("TIENDA_")},
                "TIENDA_ENV": "production",
                "TIENDA_JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs256",
                "TIENDA_USERS_DATABASE_URL": users_url.render_as_string(hide_password=False),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "Migrated: users" in migrated.stdout
        tables = sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database=f"{prefix}users")
        assert int(tables.stdout) > 3
        # ... and no other service's role may connect to it.
        denied = sql("SELECT 1", user=f"{prefix}catalog", database=f"{prefix}users")
        assert denied.returncode != 0
        assert "permission denied" in denied.stderr
    finally:
        for name in ("users", "catalog"):
            sql(f'DROP DATABASE IF EXISTS "{prefix}{name}" WITH (FORCE)')
            sql(f'DROP ROLE IF EXISTS "{prefix}{name}"')
