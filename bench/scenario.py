"""What a scenario is. A module adds its own in bench/scenarios/<module>.py (see README):

Scenario(
    name="get_cart",
    description="GET /api/v1/carts with a bearer token",
    concurrencies=(32, 64),
    lua="get_cart.lua",                     # or flow=an async function (bench/flows.py)
    rows=lambda t: [(u.user_id, t.token_for(u.user_id)) for u in t.sample()],
)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.data import BenchUser
from bench.flows import Flow
from tienda.settings import Settings


@dataclass(frozen=True)
class Target:
    """The running shop as scenarios see it, and the data set loaded into it."""

    base_url: str
    server: str
    database_url: str
    users: Sequence[BenchUser]
    password: str
    token_for: Callable[[str], str]
    products: Sequence[str] = ()
    """Published product ids spread over the catalog."""
    admin_token: str = ""

    def sample(self, count: int = 2000) -> Sequence[BenchUser]:
        """Up to `count` users spread evenly over the data set (enough to defeat any
        per-user caching, few enough to prepare in a blink)."""
        step = max(1, len(self.users) // count)
        return self.users[::step][:count]


Rows = Callable[[Target], Sequence[Sequence[str]]]
Check = Callable[[Target], Coroutine[Any, Any, list[str]]]
Prime = Callable[[Target], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    concurrencies: tuple[int, ...]
    rows: Rows
    """The data the load reads: one tab-separated line per row for wrk, one tuple per flow run."""
    lua: str | None = None
    """A script in bench/lua, run with wrk: for single-request scenarios."""
    flow: Flow | None = None
    """A multi-step async flow, run with the asyncio client (bench/flows.py)."""
    ceiling: str | None = "hello"
    """The ceiling row this one is a fraction of, at the same server and concurrency:
    `hello`, `argon2`, `pg_hot_row`, `redis_get`, `redis_set`, `redis_eval`, `redis_reserve`, or None."""
    check: Check | None = None
    """Consistency check after the run (e.g. stock + sold = initial); returns problems."""
    prime: Prime | None = None
    """Before the warm-up: brings the shop to the state the scenario measures (every product
    read once, so that all are in the cache)."""

    def __post_init__(self) -> None:
        if (self.lua is None) == (self.flow is None):
            raise ValueError(f"scenario {self.name}: give exactly one of lua= and flow=")
        if not self.concurrencies or min(self.concurrencies) < 1:
            raise ValueError(f"scenario {self.name}: concurrencies must be positive")

    @property
    def tool(self) -> str:
        return "wrk" if self.lua is not None else "asyncio"


@dataclass(frozen=True)
class LoadContext:
    """What a module's loader gets: the shop's settings (its database URL among them) and
    the size of the data set. Loaders must be deterministic: same size and seed, same rows."""

    settings: Settings
    database_url: str
    users: Sequence[BenchUser]
    quick: bool
    products: int = 0


@dataclass(frozen=True)
class BenchModule:
    """One shop module's part of the bench: how it fills its tables, and its scenarios."""

    name: str
    load: Callable[[LoadContext], Coroutine[Any, Any, None]]
    scenarios: tuple[Scenario, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    """Settings (TIENDA_* variables) the shop runs with for this module's scenarios."""
