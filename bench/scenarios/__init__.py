"""The registry: every module's part of the bench. A module that lands adds a file beside
this one defining `MODULE = BenchModule(...)` and one entry to MODULES."""

from __future__ import annotations

from collections.abc import Sequence

from bench.scenario import BenchModule, Scenario
from bench.scenarios import carts, catalog, inventory, orders, search, shop, users

MODULES: tuple[BenchModule, ...] = (
    users.MODULE,
    catalog.MODULE,
    search.MODULE,
    inventory.MODULE,
    carts.MODULE,
    orders.MODULE,
    shop.MODULE,
)

SCENARIOS: tuple[Scenario, ...] = tuple(s for module in MODULES for s in module.scenarios)


def select(names: Sequence[str] | None) -> tuple[Scenario, ...]:
    """The scenarios named, in registry order; all of them when none is named."""
    if not names:
        return SCENARIOS
    known = {s.name for s in SCENARIOS}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return tuple(s for s in SCENARIOS if s.name in names)
