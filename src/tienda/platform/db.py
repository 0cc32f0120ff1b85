"""Async SQLAlchemy engines, column types that behave the same on SQLite, PostgreSQL and
MariaDB, and the unit of work every entry point (request, client call, event, job) opens.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    ClauseElement,
    ColumnElement,
    DateTime,
    Dialect,
    Executable,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    event,
    select,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Float, TypeDecorator, TypeEngine
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from tienda.platform.events import EventSink, OutboxTables

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigPK = BigInteger().with_variant(Integer, "sqlite")

PublicId = String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")
"""A public id compared exactly: MySQL/MariaDB's default collation ignores case ("p_Tee" = "p_tee")."""
"""A 64-bit surrogate key that still autoincrements on SQLite."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python everywhere; stored naive-UTC where the database has no zone."""

    impl = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Money = Numeric(12, 2, asdecimal=True)

TYPE_ANNOTATION_MAP: dict[Any, Any] = {
    datetime: UTCDateTime(),
    Decimal: Money,
    dict[str, Any]: JSON(),
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def engine_for(url: str, *, pool_size: int = 10, echo: bool = False, readonly: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _serialise_sqlite_writers(engine, readers=readonly)
        return engine
    # No pre-ping: it costs a round trip on every checkout (measured ~9% of a read request's
    # CPU); stale connections are recycled instead and a dropped one fails one request.
    # No overflow: the pool closes an overflow connection as soon as it comes back to a full
    # pool, so load that hovers above `pool_size` opened and closed connections all the time
    # (a server process started and stopped each; 9 a second under 50 clients reserving, and
    # most of the machine's unaccounted CPU with the Redis strategy). Connections, once made,
    # stay; a request that finds them all busy waits for one.
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0, pool_recycle=1800)


def _serialise_sqlite_writers(engine: AsyncEngine, *, readers: bool = False) -> None:
    """SQLite allows one writer: take the write lock at BEGIN (IMMEDIATE) so two transactions
    never deadlock upgrading a read lock, and wait for it instead of failing at once. An
    engine of `readers` begins deferred: in WAL mode a read neither waits for the writer nor
    holds it up (a consumer that reads another module's tables inside its own transaction
    would otherwise wait for itself when the modules share one file)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if readers else "BEGIN IMMEDIATE")


class RawLane:
    """Pooled connections kept out of the engine's pool for `Database.rows` and `Database.run`
    on PostgreSQL, so that a statement does not check a connection out of the pool and back in.

    SQLAlchemy's asyncio pool is synchronous code run in a greenlet: checking a connection out
    and back in cost 60-75 us of CPU a statement, as much as asyncpg's own work on a trivial
    query (`db.rows` of `SELECT 1`: 123-149 us, the same query on a held connection 59-70 us;
    one process, one core). The lane takes connections from the pool as the statements in
    flight need them, up to `limit` (half the pool: sessions keep the rest), and keeps them
    between statements; past `limit` a statement checks one out of the pool as before. A
    connection goes back to the pool when it has been out for `hold_seconds` (so the pool's
    recycling applies) or once the engine is disposed, and is invalidated when its driver
    closed under a statement. One lane per engine: the modules sharing a database share it."""

    def __init__(self, pool: Pool, *, limit: int, hold_seconds: float = 60.0) -> None:
        self.pool = pool
        self.limit = limit
        self.hold_seconds = hold_seconds
        self.held = 0
        """Connections the lane has out of the pool, idle or running a statement."""
        self._idle: list[tuple[PoolProxiedConnection, float]] = []
        self._closed = False

    async def acquire(self) -> tuple[PoolProxiedConnection, float | None]:
        """A connection and when the lane took it from the pool (None: not the lane's)."""
        now = time.monotonic()
        while self._idle:
            pooled, since = self._idle.pop()
            if now - since < self.hold_seconds:
                return pooled, since
            self.held -= 1
            await greenlet_spawn(pooled.close)
        if self.held >= self.limit or self._closed:
            return await greenlet_spawn(self.pool.connect), None
        self.held += 1
        try:
            return await greenlet_spawn(self.pool.connect), now
        except BaseException:
            self.held -= 1
            raise

    async def release(self, pooled: PoolProxiedConnection, since: float | None) -> None:
        driver = pooled.driver_connection
        alive = driver is not None and not driver.is_closed()
        if since is not None and alive and not self._closed and time.monotonic() - since < self.hold_seconds:
            self._idle.append((pooled, since))
            return
        if since is not None:
            self.held -= 1
        if not alive:  # the pool makes a new one instead
            await greenlet_spawn(pooled.invalidate)
        else:
            await greenlet_spawn(pooled.close)  # back to the pool, which rolls back nothing

    async def close(self) -> None:
        """Every idle connection back to the pool; those running a statement go back after it."""
        self._closed = True
        idle, self._idle = self._idle, []
        for pooled, _ in idle:
            self.held -= 1
            await greenlet_spawn(pooled.close)


_lanes: weakref.WeakKeyDictionary[Any, RawLane] = weakref.WeakKeyDictionary()


def raw_lane(engine: AsyncEngine) -> RawLane:
    """The engine's lane, made on first use and again after the engine's pool was disposed or
    replaced: half the pool (`pool_size`), at least one. The lane holds the pool, not the
    engine, so the engine's entry here goes when the engine does."""
    pool = engine.sync_engine.pool
    lane = _lanes.get(engine.sync_engine)
    if lane is None or lane._closed or lane.pool is not pool:
        size = pool.size() if isinstance(pool, QueuePool) else 2
        lane = _lanes[engine.sync_engine] = RawLane(pool, limit=max(1, size // 2))
    return lane


class Database:
    """One module's database: its engine, its sessions, its outbox."""

    def __init__(
        self,
        module: str,
        url: str,
        *,
        outbox: OutboxTables,
        pool_size: int = 10,
        echo: bool = False,
        engine: AsyncEngine | None = None,
    ) -> None:
        """`engine`: one shared with the other modules on the same database, so one process
        keeps one pool per database server, not one per module."""
        self.module = module
        self.url = url
        self.outbox = outbox
        self.engine = engine or engine_for(url, pool_size=pool_size, echo=echo)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Reads in autocommit skip BEGIN and ROLLBACK: one round trip per query instead of three.
        # SQLite reads get an engine of their own whose transactions take no write lock.
        self.read_engine = (
            engine_for(url, echo=echo, readonly=True)
            if self.dialect == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False, autoflush=False)
        self.sink: EventSink | None = None
        self._raw: dict[Executable, _RawStatement] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def multi_table_statements(self) -> bool:
        """Whether one statement can write several tables (data-changing CTEs: PostgreSQL's),
        so that a change, its audit rows and its events commit together without a transaction."""
        return self.dialect == "postgresql"

    def published(self) -> None:
        """Events were committed to the outbox (by a unit of work, or by a statement that wrote
        them itself): the relay, if this process runs one, looks now instead of at its next poll."""
        if self.sink is not None:
            self.sink.wake()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self)

    def reader(self) -> UnitOfWork:
        """A unit of work for reads only: it cannot commit or publish."""
        return UnitOfWork(self, readonly=True)

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement, in autocommit, as plain tuples: for the reads (and the
        writes with RETURNING) of hot paths whose columns SQLAlchemy has nothing to convert
        (text and numbers; `_RawStatement` checks). A write commits as it runs.

        On PostgreSQL the statement, compiled once, goes to asyncpg itself on a connection of
        the pool, past SQLAlchemy's execution context and result objects, and past the Core
        connection too: checked out raw, the pooled connection has no isolation level set and
        reset and no events fired (it is never left inside a transaction, and asyncpg runs a
        query outside one as autocommit). Measured on one stock lookup (one row, 3,000 reads in
        one process): 123-155 us of CPU inside a Core connection, 198 through one, 255 through
        a session; a trivial query 177 us inside a Core connection, 112 raw. Elsewhere it runs
        through a Core connection."""
        if self.dialect != "postgresql":
            async with self._autocommit(statement) as conn:
                return [tuple(row) for row in await conn.execute(statement, params)]
        records = await self._raw_run(statement, params, returns_rows=True)
        return [tuple(record) for record in records]

    async def run(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """One write (UPDATE, DELETE, INSERT) in autocommit, as `rows` runs it; how many rows it
        changed. Its errors are SQLAlchemy's, as through a session (`IntegrityError`...)."""
        if self.dialect != "postgresql":
            async with self._autocommit(statement) as conn:
                return int((await conn.execute(statement, params)).rowcount)
        status = await self._raw_run(statement, params, returns_rows=False)
        tail = status.rpartition(" ")[2]  # "UPDATE 1", "INSERT 0 1"
        return int(tail) if tail.isdigit() else 0

    @asynccontextmanager
    async def _autocommit(self, statement: Executable) -> AsyncIterator[AsyncConnection]:
        """A Core connection for one statement outside a transaction; on SQLite a write takes
        the one writer's lock (its engine begins IMMEDIATE) and commits."""
        if self.dialect == "sqlite" and not isinstance(statement, Select):
            async with self.engine.begin() as conn:
                yield conn
        else:
            async with self.read_engine.connect() as conn:
                yield conn

    async def _raw_run(self, statement: Executable, params: Mapping[str, Any], *, returns_rows: bool) -> Any:
        raw = self._raw.get(statement)
        if raw is None:
            raw = self._raw[statement] = _RawStatement.of(statement, self.engine.dialect)
        arguments = raw.arguments(params)
        lane = raw_lane(self.engine)
        pooled, since = await lane.acquire()
        try:
            driver = pooled.driver_connection
            assert driver is not None  # a checked-out connection has one
            try:
                if returns_rows:
                    return await driver.fetch(raw.sql, *arguments)
                return await driver.execute(raw.sql, *arguments)
            except Exception as error:
                raise self._as_sqlalchemy_error(raw.sql, arguments, error) from error
        finally:
            await lane.release(pooled, since)

    def _as_sqlalchemy_error(self, sql: str, arguments: list[Any], error: Exception) -> Exception:
        """The driver's error as a session would have raised it (the dialect translates
        asyncpg's classes into its DBAPI's, which SQLAlchemy wraps: `IntegrityError`...)."""
        dialect = self.engine.dialect
        dbapi = dialect.loaded_dbapi
        translate: Mapping[type[Exception], Any] = getattr(dbapi, "_asyncpg_error_translate", {})
        for kind in type(error).__mro__:
            if kind in translate:
                translated = translate[kind](error.args[0] if error.args else str(error), error)
                wrapped: Exception = DBAPIError.instance(sql, arguments, translated, dbapi.Error, dialect=dialect)
                return wrapped
        return error

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        lane = _lanes.get(self.engine.sync_engine)
        if lane is not None:
            await lane.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine and self.dialect == "sqlite":
            await self.read_engine.dispose()


_PG_NUMERIC = 1700
"""The type oid of NUMERIC, which asyncpg reads into a Decimal itself."""


def _converts(type_: TypeEngine[Any], dialect: Dialect) -> bool:
    """Whether SQLAlchemy converts what the driver reads for a column of this type. Its answer
    for a number depends on the type the server names (asyncpg's dialect asks for it): a
    `Numeric` that is not a `Float` is a NUMERIC column, which asyncpg reads into a Decimal."""
    numeric = isinstance(type_, Numeric) and not isinstance(type_, Float)
    return type_.dialect_impl(dialect).result_processor(dialect, _PG_NUMERIC if numeric else None) is not None


@dataclass(frozen=True)
class _RawStatement:
    """A statement compiled for the driver: its SQL, its parameters in order (with the values
    the statement holds itself), and the conversions SQLAlchemy's types make to them on the way
    in (a list into an array, say)."""

    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    held: Mapping[str, Any]
    """The values the statement holds itself (`.limit(1)`, `.values(last=1)`)."""

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> _RawStatement:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        converted = [
            column[0]
            for column in getattr(compiled, "_result_columns", ())  # the columns SQLAlchemy reads, with their types
            if _converts(column[3], dialect)
        ]
        processors = dict(compiled._bind_processors)
        needs = [f"column {name}" for name in converted]
        needs += ["an expanding IN"] if "POSTCOMPILE" in compiled.string else []
        needs += [f"parameter {name}" for name, process in processors.items() if not callable(process)]
        if needs:
            raise TypeError(
                f"Database.rows and run take statements of plain columns and parameters; {', '.join(needs)}"
                " needs SQLAlchemy's execution: run it through a unit of work"
            )
        return cls(
            sql=compiled.string,
            names=tuple(compiled.positiontup or ()),
            processors=cast(dict[str, Callable[[Any], Any]], processors),
            held={name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required},
        )

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self.held, **params} if self.held else params
        return [self.processors[name](values[name]) if name in self.processors else values[name] for name in self.names]


SelectT = TypeVar("SelectT", bound=Select[Any])


def locking_by_id(query: SelectT, table: Any) -> SelectT:
    """`query`, a locking read of rows of `table` named by primary key (`id IN (...)`), told
    to find them through the primary key on MySQL and MariaDB.

    A locking read locks what it reads on the way in InnoDB: through a range of a secondary
    index, or a whole table scan, that is the gaps between the rows too (next-key locks), and
    a row inserted into such a gap waits for the reader's commit. When a reader then waits for
    a lock the inserter holds, that is a deadlock; when it does not, every insert waits for it.
    Read by primary key, the rows alone are locked. Find the ids with a plain read first,
    then lock them with this (`lock_matching`, `inventory.repository`, `OutboxRelay._claim`).
    Without the hint MariaDB scanned a table of a few rows whole, gaps and all, when the ids
    named most of it. PostgreSQL and SQLite lock no gaps and get no hint."""
    return query.with_hint(table, "FORCE INDEX (PRIMARY)", dialect_name="mysql")


RowT = TypeVar("RowT")


async def lock_matching(
    session: AsyncSession,
    entity: type[RowT],
    where: Sequence[ColumnElement[bool]],
    *,
    order_by: Sequence[Any],
    limit: int,
    ids: Sequence[int] | None = None,
) -> list[RowT]:
    """Up to `limit` rows of `entity` that match `where`, in `order_by`, locked until commit;
    rows another transaction holds are skipped, not waited for (a job or a sender taking its
    share of the due rows). Their ids are read first without a lock (or given: `ids`), then
    those rows are locked by primary key (`locking_by_id`), `where` checked again on each as
    stored then."""
    if ids is None:
        key = entity.id  # type: ignore[attr-defined]
        ids = list(await session.scalars(select(key).where(*where).order_by(*order_by).limit(limit)))
    if not ids:
        return []
    query = select(entity).where(entity.id.in_(ids), *where).order_by(*order_by).limit(limit)  # type: ignore[attr-defined]
    return list(await session.scalars(locking_by_id(query.with_for_update(skip_locked=True), entity)))


_GAVE_UP_SQLSTATES = frozenset({"40001", "40P01"})
"""PostgreSQL's serialization_failure and deadlock_detected."""
_GAVE_UP_MYSQL_ERRORS = frozenset({1213})
"""MariaDB's and MySQL's ER_LOCK_DEADLOCK: the whole transaction was rolled back."""


def gave_way(exc: BaseException) -> bool:
    """Whether the database rolled this transaction back for another's sake (a deadlock, or a
    serialization failure) rather than for anything in it: run again from the start, it may
    well go through. InnoDB's manual asks applications to be ready for this on any write;
    PostgreSQL's names the same two errors as the ones worth retrying."""
    if not isinstance(exc, DBAPIError):
        return False
    error = exc.orig
    if getattr(error, "sqlstate", None) in _GAVE_UP_SQLSTATES:  # asyncpg, as SQLAlchemy adapts it
        return True
    args: tuple[Any, ...] = getattr(error, "args", ())
    return bool(args) and args[0] in _GAVE_UP_MYSQL_ERRORS  # asyncmy: (errno, message)


class UnitOfWork:
    """A transaction of one module. Services `flush()`; the entry point commits.

    Events published here go to the module's outbox table in the same transaction, so a
    change and its events commit together or not at all.
    """

    def __init__(self, db: Database, *, readonly: bool = False) -> None:
        self.db = db
        self.readonly = readonly
        self.committed = False
        self._published = 0
        self._after_commit: list[Callable[[], Awaitable[None]]] = []

    async def __aenter__(self) -> Self:
        self.session: AsyncSession = (self.db.read_sessions if self.readonly else self.db.sessions)()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if not self.committed and not self.readonly:
                await self.session.rollback()
        finally:
            await self.session.close()

    async def publish(self, event_type: str, payload: dict[str, Any], *, at: datetime | None = None) -> str:
        """Write an event to the outbox in this transaction; returns its id."""
        from tienda.platform.events import outbox_row

        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot publish")
        row = outbox_row(event_type, payload, source=self.db.module, at=at)
        await self.session.execute(self.db.outbox.add_event, row)
        self._published += 1
        return str(row["event_id"])

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once this unit of work has committed (never if it rolls back): for what
        must not be seen before the change is, such as refreshing a cached copy of it."""
        self._after_commit.append(action)

    async def commit(self) -> None:
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self.session.commit()
        self.committed = True
        if self._published:
            self.db.published()
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            await action()
