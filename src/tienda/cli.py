"""The `tienda` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import SecretStr

from tienda.app import build_platform, create_app, select_modules
from tienda.catalog.seed import StockItem, count_products, seed_catalog
from tienda.inventory.seed import seed_stock
from tienda.orders.seed import seed_coupons
from tienda.platform.auth import Role
from tienda.platform.http import UpstreamUnavailable
from tienda.platform.migrations import make_revision
from tienda.platform.runtime import Platform, settle_collector
from tienda.search.wiring import search_service
from tienda.settings import Settings
from tienda.users.errors import EmailTaken
from tienda.users.wiring import build_user_service

DEV_PRODUCTS = 200
"""Demo products `tienda dev` adds on first start."""

app = typer.Typer(
    help="Tienda: an e-commerce backend. Run `tienda dev` to start a shop on this machine.", no_args_is_help=True
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where SQLite files, uploads, mail and secrets live (env TIENDA_DATA_DIR). Default: ./var"
    ),
]


def _settings(data_dir: Path | None, **overrides: Any) -> Settings:
    if data_dir is not None:
        # Exported so worker processes started from here (uvicorn --workers) see the same shop.
        os.environ["TIENDA_DATA_DIR"] = str(data_dir)
    for key, value in overrides.items():
        os.environ[f"TIENDA_{key.upper()}"] = str(value)
    return Settings()


KEEP_ALIVE_SECONDS = 75
"""How long the API keeps an idle keep-alive connection open: longer than its callers keep
theirs (nginx's upstream connections 60 s, another service's client 30 s), so that the API
never closes a connection a caller is sending on at that moment, a request the caller could
not safely send again (uvicorn's default of 5 s turned such races into 503s under load)."""


def _run(coro: Any) -> Any:
    """Runs a command's coroutine on uvloop, as the API servers do (uvicorn, granian): the
    worker spends much of its time in socket writes, which uvloop makes cheaper."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard] (not on Windows)
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def _create_user(platform: Platform, *, email: str, password: str, full_name: str, role: Role) -> str:
    service = build_user_service(platform)
    async with platform.db("users").uow() as uow:
        user = await service.register(uow, email=email, password=password, full_name=full_name, phone=None, role=role)
        await uow.commit()
        return user.user_id


async def _seed_shop(platform: Platform, *, products: int, seed: int) -> tuple[int, int]:
    """The demo catalog and its stock in inventory, the same numbers on both sides, and the demo
    coupon (NEWUSER10); returns (products added, items stocked)."""
    stocked = 0
    now = platform.clock.now()

    async def stock(items: list[StockItem]) -> None:
        nonlocal stocked
        stocked += await seed_stock(platform.db("inventory"), items, now=now)

    added = await seed_catalog(platform.db("catalog"), products=products, seed=seed, now=now, stock=stock)
    await seed_coupons(platform.db("orders"), now=now)
    return added, stocked


async def _bootstrap_dev(settings: Settings) -> list[str]:
    """Migrate; on first start create an admin and a demo user and remember their credentials."""
    platform = build_platform(settings)
    try:
        await platform.migrate()
        credentials = settings.data_dir / "credentials.txt"
        if not credentials.exists():
            lines = []
            for email, name, role in (
                ("admin@tienda.local", "Shop Admin", Role.ADMIN),
                ("demo@tienda.local", "Demo Shopper", Role.USER),
            ):
                password = secrets.token_urlsafe(12)
                try:
                    await _create_user(platform, email=email, password=password, full_name=name, role=role)
                except EmailTaken:
                    continue
                lines.append(f"{role.value:<5}  {email:<22} {password}")
            credentials.write_text("\n".join(lines) + "\n")
            credentials.chmod(0o600)
        if await count_products(platform.db("catalog")) == 0:
            await _seed_shop(platform, products=DEV_PRODUCTS, seed=1)
            await search_service(platform).reindex()
        else:
            await search_service(platform).ensure_index()
        return credentials.read_text().splitlines()
    finally:
        await platform.close()


@app.command()
def seed(
    products: Annotated[int, typer.Option(min=0, max=10_000_000, help="How many products to add.")] = 200,
    seed_number: Annotated[int, typer.Option("--seed", help="Same number, same catalog.")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Add a realistic demo catalog (categories, brands, variants, images, INR prices) and its
    stock in inventory, made deterministically from a seed number."""
    settings = _settings(data_dir)
    platform = build_platform(settings)

    async def main() -> tuple[int, int, float, int, float]:
        try:
            await platform.migrate()
            started = time.perf_counter()
            added, stocked = await _seed_shop(platform, products=products, seed=seed_number)
            seeded = time.perf_counter()
            indexed = await search_service(platform).reindex()  # bulk inserts publish no events
            return added, stocked, seeded - started, indexed, time.perf_counter() - seeded
        finally:
            await platform.close()

    added, stocked, seeding, indexed, indexing = _run(main())
    typer.echo(
        f"Added {added:,} products in {seeding:.1f} s; search index rebuilt ({indexed:,} products) in "
        f"{indexing:.1f} s; {stocked:,} variants and products stocked in inventory"
    )


@app.command()
def reindex(data_dir: DataDir = None) -> None:
    """Rebuild the search index from the catalog. Searches go on against the old index until
    the new one is complete; catalog changes made meanwhile are applied to the new one."""
    settings = _settings(data_dir)
    platform = build_platform(settings)

    async def main() -> int:
        try:
            return await search_service(platform).reindex()
        finally:
            await platform.close()

    started = time.perf_counter()
    indexed = _run(main())
    typer.echo(f"Indexed {indexed:,} published products in {time.perf_counter() - started:.1f} s")


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
) -> None:
    """Run the whole shop in one process on embedded defaults: SQLite under the data dir,
    in-process events, in-memory cache, e-mail as files. Migrates and creates an admin and a
    demo user on first start."""
    import uvicorn

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    accounts = _run(_bootstrap_dev(settings))
    base = f"http://{host}:{port}"
    typer.echo(f"\nTienda is starting at {base}")
    typer.echo(f"  API docs:   {base}/docs")
    typer.echo(f"  Data dir:   {settings.data_dir}")
    typer.echo(f"  E-mail:     {settings.mail_dir}")
    typer.echo("  Accounts (also in credentials.txt in the data dir):")
    for line in accounts:
        typer.echo(f"    {line}")
    typer.echo("")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes; default: one per core.")] = 0,
    service: Annotated[
        list[str] | None, typer.Option(help="Serve only this module (repeatable): the microservice deployment.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the API in production configuration: URLs from TIENDA_* environment variables,
    several worker processes. Run `tienda migrate` first and `tienda worker` beside it."""
    from tienda.platform import serving

    overrides: dict[str, Any] = {}
    if service:
        select_modules(service)
        # As JSON, the form a list setting takes in the environment (the workers read it there).
        overrides["services"] = json.dumps(service)
    settings = _settings(data_dir, **overrides)
    count = workers or os.cpu_count() or 1
    if count > 1:
        # prometheus_client reads this variable itself, in each worker, at import.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        os.environ["TIENDA_METRICS_MULTIPROCESS_DIR"] = str(metrics_dir)
    typer.echo(
        f"Serving {', '.join(settings.services) or 'all modules'} on http://{host}:{port} with {count} worker(s)"
    )
    serving.run(
        "tienda.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=count,
        proxy_headers=True,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **serving.SERVER_OPTIONS,
    )


@app.command()
def worker(
    service: Annotated[list[str] | None, typer.Option(help="Work only for this module (repeatable).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Relay outbox events to the broker and run the event consumers and scheduled jobs."""
    settings = _settings(data_dir)
    platform = build_platform(settings, modules=select_modules(service))

    async def main() -> None:
        try:
            if "search" in platform.modules:
                await _when_reachable(search_service(platform).ensure_index, "the catalog service (to build the index)")
            await platform.start_consumers()
            platform.jobs.start()
            settle_collector()
            broker = "RabbitMQ" if settings.broker_url else "in-process"
            typer.echo(f"Worker running for {', '.join(platform.modules)} (broker: {broker})")
            await platform.relay.run_forever()
        finally:
            await platform.close()

    with contextlib.suppress(KeyboardInterrupt):
        _run(main())


async def _when_reachable(work: Callable[[], Awaitable[object]], what: str) -> None:
    """Runs `work` until another service it needs answers: a worker started before that
    service (in any order, as compose and Kubernetes start them) waits instead of exiting."""
    delay = 1.0
    while True:
        try:
            await work()
            return
        except UpstreamUnavailable as exc:
            typer.echo(f"Waiting {delay:.0f}s for {what}: {exc.message}", err=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


@app.command()
def migrate(
    service: Annotated[list[str] | None, typer.Option(help="Migrate only this module's database (repeatable).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Bring every module's database schema up to date (SQLite, PostgreSQL or MariaDB)."""
    settings = _settings(data_dir)
    platform = build_platform(settings, modules=select_modules(service))

    async def main() -> None:
        try:
            await platform.migrate()
        finally:
            await platform.close()

    _run(main())
    typer.echo(f"Migrated: {', '.join(platform.modules)}")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's e-mail.")],
    password: Annotated[str, typer.Option(help="At least 8 characters.", prompt=True, hide_input=True)],
    full_name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
    data_dir: DataDir = None,
) -> None:
    """Create an ADMIN user in the shop of this data dir / database."""
    from tienda.users.schemas import RegisterRequest

    try:
        RegisterRequest(email=email, password=password)
    except ValueError as exc:
        typer.echo(f"Invalid input: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = _settings(data_dir)
    platform = build_platform(settings)

    async def main() -> str:
        try:
            await platform.migrate()
            return await _create_user(platform, email=email, password=password, full_name=full_name, role=Role.ADMIN)
        finally:
            await platform.close()

    try:
        user_id = _run(main())
    except EmailTaken:
        typer.echo(f"An account with {email} already exists.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Admin created: {user_id} <{email.lower()}>")


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print the OpenAPI document of the whole API as YAML."""
    text = openapi_yaml()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def openapi_yaml() -> str:
    settings = Settings(env="test", jwt_secret=SecretStr("openapi-only"))
    document = create_app(settings).openapi()
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


@app.command()
def makemigrations(
    module: Annotated[str, typer.Argument(help="Module whose models changed.")],
    message: Annotated[str, typer.Argument(help="A slug for the migration, e.g. 'add coupons'.")],
    data_dir: DataDir = None,
) -> None:
    """(Developers) Write a new migration for a module by comparing its models with a database
    migrated to head."""
    settings = _settings(data_dir)
    platform = build_platform(settings, modules=select_modules([module]))

    async def main() -> None:
        try:
            await platform.migrate()
            await make_revision(platform.modules[module], platform.databases[module].url, message)
        finally:
            await platform.close()

    _run(main())


def main() -> None:
    app()
