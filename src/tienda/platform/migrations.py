"""Alembic per module: each module has its own versions and its own version table
(`alembic_version_<module>`), so modules can share one database or have one each.
"""

from __future__ import annotations

from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from tienda.platform.modules import ModuleSpec


def version_table(module: str) -> str:
    return f"alembic_version_{module}"


def alembic_config(spec: ModuleSpec, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", spec.migrations)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s_%%(rev)s")
    cfg.attributes["module"] = spec.name
    cfg.attributes["metadata"] = spec.metadata
    return cfg


async def upgrade(spec: ModuleSpec, url: str, revision: str = "head") -> None:
    await _run(spec, url, lambda cfg: command.upgrade(cfg, revision))


async def make_revision(spec: ModuleSpec, url: str, message: str) -> None:
    await _run(spec, url, lambda cfg: command.revision(cfg, message=message, autogenerate=True))


async def _run(spec: ModuleSpec, url: str, action: Any) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:

            def run(sync_conn: Any) -> None:
                cfg = alembic_config(spec, url)
                cfg.attributes["connection"] = sync_conn
                action(cfg)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


def run_env(metadata: MetaData, module: str) -> None:
    """The body of every module's `migrations/env.py`."""
    config = context.config
    connection = config.attributes.get("connection")
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": version_table(module),
        "render_as_batch": True,
        "compare_type": True,
        "include_name": lambda name, type_, _parent: type_ != "table" or name in metadata.tables,
    }
    if connection is None:
        context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
    else:
        context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()
