"""Redis counters of available units, for the Redis ("flash-sale") reservation strategy.

The database stays the record; a counter is a filter in front of it, so that the requests
that cannot be served are refused by one Lua script and never wait for the stock row's lock.
Each counter is a hash {a: available, e: epoch}. The epoch ties it to the stock row, whose
`cache_epoch` column says which counter is current:

- A counter is loaded from the row (when missing, or expired: counters live
  `inventory_redis_ttl_seconds`) by moving the row's epoch on under its lock, committing, then
  writing {a, e} unless a newer load got there first. Changes committed between the two
  steps carry the new epoch and are parked in `<counter>:pending:<epoch>`, which the load
  adds; so the counter is exact even while reservations go on.
- A reservation takes its units from the counters of all its items at once (all or nothing)
  before the database is touched, and remembers the epochs it saw. The database's guarded
  UPDATE still decides (a wrong counter cannot oversell); it returns the row's epoch, and
  when that differs from the one seen, the units are taken again from the current counter
  after the commit. If the database refuses or the transaction does not commit, the units
  are given back to the counter of the epoch they came from (a newer counter never had them).
- A release, an expiry or an adjust changes the row first and, after the commit, the counter
  of the epoch it read under the row's lock: same epoch, applied; an older counter is out of
  date (dropped, the change parked for the load); a newer one already includes the change.
- A change made without Redis (the database strategy, Redis unreachable, or a duplicate of
  an order in flight) moves the epoch on, so the counter it bypassed is known to be out of
  date: the next reservation that reaches the row, or whose refusal is checked against it,
  drops it and it is reloaded.
- A counter the database contradicts (it let through what the row refused) expires within
  DOUBT_MS and is reloaded: it may be wrong, or only behind a change for a moment.

What is left: a process that dies between taking units in Redis and committing leaves the
counter lower than the database until it is next loaded (at most the TTL): it may refuse
what the database could have sold, never the reverse. (A request cancelled by its client
does not: the take runs in a task of its own and `abandoned` gives the units back.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from tienda.platform.redis_pipeline import auto_pipeline

Key = tuple[str, str]
"""(product id, variant id; "" for stock kept for a product as a whole)."""

RESERVE_SCRIPT = """
local n = #KEYS - 1
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then return {-2} end
local seen, missing = {}, {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i], 'a', 'e')
  if v[1] and v[2] then seen[i] = v else missing[#missing + 1] = i end
end
if #missing > 0 then return {-1, missing} end
local epochs, short = {}, {}
for i = 1, n do
  local a = tonumber(seen[i][1])
  epochs[i] = tonumber(seen[i][2])
  if a < tonumber(ARGV[i]) then short[#short + 1] = i; short[#short + 1] = a end
end
if #short > 0 then return {0, epochs, short} end
for i = 1, n do redis.call('HINCRBY', KEYS[i], 'a', -tonumber(ARGV[i])) end
redis.call('SET', KEYS[#KEYS], '1', 'EX', tonumber(ARGV[#ARGV]))
return {1, epochs}
"""
"""KEYS: counters, then the order's key; ARGV: units wanted of each, then the order key's ttl.
{-2}: the order took its units already (in another request) | {-1, missing indexes} |
{0, epochs, {index, available, ...} short} | {1, epochs}: taken."""

_APPLY = """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  local delta, epoch = tonumber(ARGV[2 * n]), tonumber(ARGV[2 * n + 1])
  local e = redis.call('HGET', KEYS[i], 'e')
  if e and tonumber(e) == epoch then
    redis.call('HINCRBY', KEYS[i], 'a', delta)
  elseif not e or tonumber(e) < epoch then
    if e then redis.call('DEL', KEYS[i]) end
    redis.call('INCRBY', KEYS[i + 1], delta)
    redis.call('EXPIRE', KEYS[i + 1], ttl)
  end
end
return 1
"""
"""KEYS: (counter, its pending of the epoch) pairs; ARGV: ttl, then (delta, epoch) pairs."""

_LOAD = """
local e = redis.call('HGET', KEYS[1], 'e')
if e and tonumber(e) >= tonumber(ARGV[2]) then return 0 end
local pending = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'a', tonumber(ARGV[1]) + pending, 'e', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
"""KEYS: counter, its pending of the epoch; ARGV: available as committed, epoch, ttl."""

_DROP = """
local dropped = 0
for i = 1, #KEYS do
  local e = redis.call('HGET', KEYS[i], 'e')
  if e and tonumber(e) == tonumber(ARGV[i]) then redis.call('DEL', KEYS[i]); dropped = dropped + 1 end
end
return dropped
"""
"""KEYS: counters; ARGV: the epoch of each that is known to be wrong."""

_DOUBT = """
local ms = tonumber(ARGV[#ARGV])
for i = 1, #KEYS do
  local e = redis.call('HGET', KEYS[i], 'e')
  if e and tonumber(e) == tonumber(ARGV[i]) and redis.call('PTTL', KEYS[i]) > ms then
    redis.call('PEXPIRE', KEYS[i], ms)
  end
end
return 1
"""
"""KEYS: counters; ARGV: the epoch of each that may be wrong, then how soon (ms) it expires."""

DOUBT_MS = 1000
"""A counter the database contradicted is reloaded this soon (not at once: a counter is too
high for a moment after a change that lowers the stock, until that change reaches it)."""


ORDER_TTL_SECONDS = 60
"""How long the mark of an order that took units stays: while its request is in flight, a
duplicate of it must not take the units again (it waits in the database for the first)."""


@dataclass(frozen=True)
class Taken:
    """Units an order took from the counters, with the epoch each counter had."""

    order_id: str
    quantities: dict[Key, int]
    epochs: dict[Key, int]


@dataclass(frozen=True)
class Duplicate:
    """Another request of the same order took the units."""


@dataclass(frozen=True)
class Refused:
    """The counters hold too few: available per short item, and the epoch of every counter."""

    available: dict[Key, int]
    epochs: dict[Key, int]


@dataclass(frozen=True)
class Missing:
    keys: list[Key]


class Counters:
    def __init__(self, redis: Redis, *, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self._pipeline = auto_pipeline(redis)
        self.prefix = f"{prefix}inventory:"
        self.ttl = ttl_seconds
        self._reserve = redis.register_script(RESERVE_SCRIPT)
        self._apply = redis.register_script(_APPLY)
        self._load = redis.register_script(_LOAD)
        self._drop = redis.register_script(_DROP)
        self._doubt = redis.register_script(_DOUBT)

    def key(self, item: Key) -> str:
        return f"{self.prefix}{item[0]}/{item[1]}"

    def _pending(self, item: Key, epoch: int) -> str:
        return f"{self.key(item)}:pending:{epoch}"

    def _order(self, order_id: str) -> str:
        return f"{self.prefix}order:{order_id}"

    async def take(self, order_id: str, wanted: dict[Key, int]) -> Taken | Refused | Missing | Duplicate:
        items = list(wanted)
        keys = [self.key(k) for k in items] + [self._order(order_id)]
        answer = await self._pipeline.run_script(
            self._reserve, keys=keys, args=[wanted[k] for k in items] + [ORDER_TTL_SECONDS]
        )
        status = int(answer[0])
        if status == -2:
            return Duplicate()
        if status == -1:
            return Missing([items[int(i) - 1] for i in answer[1]])
        epochs = {k: int(e) for k, e in zip(items, answer[1], strict=True)}
        if status == 1:
            return Taken(order_id=order_id, quantities=dict(wanted), epochs=epochs)
        short = answer[2]
        available = {items[int(short[i]) - 1]: int(short[i + 1]) for i in range(0, len(short), 2)}
        return Refused(available=available, epochs=epochs)

    async def apply(self, changes: Sequence[tuple[Key, int, int]]) -> None:
        """Add each (item, delta, epoch): to the counter of that epoch, or park it for its load."""
        if not changes:
            return
        keys: list[str] = []
        args: list[int] = [self.ttl]
        for item, delta, epoch in changes:
            keys += [self.key(item), self._pending(item, epoch)]
            args += [delta, epoch]
        await self._pipeline.run_script(self._apply, keys=keys, args=args)

    async def forget_order(self, order_id: str) -> None:
        await self._pipeline.execute("DEL", self._order(order_id))

    async def load(self, item: Key, available: int, epoch: int) -> None:
        await self._pipeline.run_script(
            self._load, keys=[self.key(item), self._pending(item, epoch)], args=[available, epoch, self.ttl]
        )

    async def drop(self, epochs: dict[Key, int]) -> None:
        """Forget counters known to be wrong (if still of that epoch): the next use reloads them."""
        if epochs:
            items = list(epochs)
            await self._pipeline.run_script(
                self._drop, keys=[self.key(k) for k in items], args=[epochs[k] for k in items]
            )

    async def doubt(self, epochs: dict[Key, int]) -> None:
        """Counters (if still of that epoch) that let through what the database refused: they
        expire within DOUBT_MS, so a wrong one is soon reloaded, and a right one that was only
        behind a change for a moment costs at most one load per DOUBT_MS."""
        if epochs:
            items = list(epochs)
            await self._pipeline.run_script(
                self._doubt, keys=[self.key(k) for k in items], args=[epochs[k] for k in items] + [DOUBT_MS]
            )

    async def read(self, item: Key) -> tuple[int, int] | None:
        """(available, epoch) of a counter, None when there is none (for tests and the bench)."""
        a, e = await self._pipeline.execute("HMGET", self.key(item), "a", "e")
        return (int(a), int(e)) if a is not None and e is not None else None
