"""The Redis cart store, SEED.md 4.3's recommended structure: one hash per cart, `cart:{userId}`
for a signed-in user and `cart:guest:{cartId}` (with a TTL) for a guest. Each line is a field
`{productId}/{variantId}` whose value is `{"id": itemId, "q": quantity, "t": addedAtMs, "n": seq}`
(`n` numbers the cart's lines in the order they came, so lines added in the same millisecond
still show oldest first, as the SQL store's ids order them); the field `#cart` holds the cart's
own id. Every write is one Lua script, so it is atomic: the line limit holds under concurrent
writes, and a merge reads, adds and deletes in one step.

Redis must persist (AOF or RDB) for carts to outlive a restart in production."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tienda.carts.errors import CartFull
from tienda.carts.store import LineKey, MergeCap, Owner, StoredCart, StoredLine
from tienda.platform.redis_pipeline import auto_pipeline

META = "#cart"

# KEYS: cart. ARGV: field, quantity, new item id, now ms, new cart id, max lines, ttl s (0: none).
_SET = """
local key, field, q = KEYS[1], ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', key) == 0 then
  if q == 0 then return {} end
  redis.call('HSET', key, '#cart', ARGV[5])
end
local line = redis.call('HGET', key, field)
if q == 0 then
  redis.call('HDEL', key, field)
elseif line then
  local l = cjson.decode(line)
  l.q = q
  redis.call('HSET', key, field, cjson.encode(l))
else
  if redis.call('HLEN', key) - 1 >= tonumber(ARGV[6]) then return redis.error_reply('CART_FULL') end
  local n = 0
  for _, v in ipairs(redis.call('HVALS', key)) do
    if string.sub(v, 1, 1) == '{' then n = math.max(n, cjson.decode(v).n or 0) end
  end
  redis.call('HSET', key, field, cjson.encode({id = ARGV[3], q = q, t = tonumber(ARGV[4]), n = n + 1}))
end
if tonumber(ARGV[7]) > 0 then redis.call('EXPIRE', key, ARGV[7]) end
return redis.call('HGETALL', key)
"""

# KEYS: cart. ARGV: item id. Returns 1 when the line was there.
_REMOVE = """
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= '#cart' and cjson.decode(all[i + 1]).id == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    return 1
  end
end
return 0
"""

# KEYS: cart. ARGV: (field, quantity) pairs. Each line there is less by its quantity; at 0 it goes.
_TAKE = """
for i = 1, #ARGV, 2 do
  local line = redis.call('HGET', KEYS[1], ARGV[i])
  if line then
    local l = cjson.decode(line)
    l.q = l.q - tonumber(ARGV[i + 1])
    if l.q > 0 then redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(l)) else redis.call('HDEL', KEYS[1], ARGV[i]) end
  end
end
return 0
"""

# KEYS: into, source. ARGV: new cart id, max lines, default cap, then (field, cap) pairs.
# The arithmetic is domain.merged_quantity's: the sum, capped, never below the user's own.
_MERGE = """
local into, source = KEYS[1], KEYS[2]
local theirs = redis.call('HGETALL', source)
if #theirs == 0 then return redis.call('HGETALL', into) end
local caps = {}
for i = 4, #ARGV, 2 do caps[ARGV[i]] = tonumber(ARGV[i + 1]) end
if redis.call('EXISTS', into) == 0 then redis.call('HSET', into, '#cart', ARGV[1]) end
local count, seq = redis.call('HLEN', into) - 1, 0
for _, v in ipairs(redis.call('HVALS', into)) do
  if string.sub(v, 1, 1) == '{' then seq = math.max(seq, cjson.decode(v).n or 0) end
end
local lines = {}
for i = 1, #theirs, 2 do
  if theirs[i] ~= '#cart' then
    local t = cjson.decode(theirs[i + 1])
    t.f = theirs[i]
    lines[#lines + 1] = t
  end
end
-- the guest's lines oldest first: those move over while the cart has room
table.sort(lines, function(a, b)
  if a.t ~= b.t then return a.t < b.t end
  return (a.n or 0) < (b.n or 0)
end)
for _, t in ipairs(lines) do
  local field = t.f
  t.f = nil
  local cap = caps[field] or tonumber(ARGV[3])
  local mine = redis.call('HGET', into, field)
  if mine then
    local m = cjson.decode(mine)
    m.q = math.max(m.q, math.min(m.q + t.q, cap))
    redis.call('HSET', into, field, cjson.encode(m))
  elseif count < tonumber(ARGV[2]) and math.min(t.q, cap) > 0 then
    seq = seq + 1
    t.q, t.n = math.min(t.q, cap), seq
    redis.call('HSET', into, field, cjson.encode(t))
    count = count + 1
  end
end
redis.call('DEL', source)
return redis.call('HGETALL', into)
"""


def _field(key: LineKey) -> str:
    return f"{key.product_id}/{key.variant_id or ''}"


def _key(field: str) -> LineKey:
    product_id, _, variant_id = field.partition("/")
    return LineKey(product_id, variant_id or None)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _cart(flat: list[Any]) -> StoredCart | None:
    """A cart from HGETALL's flat [field, value, ...] answer."""
    if not flat:
        return None
    cart_id = ""
    fields: list[str] = []
    values: list[bytes] = []
    for field, value in zip(flat[::2], flat[1::2], strict=True):
        name = field.decode() if isinstance(field, bytes) else str(field)
        if name == META:
            cart_id = value.decode() if isinstance(value, bytes) else str(value)
        else:
            fields.append(name)
            values.append(value if isinstance(value, bytes) else str(value).encode())
    # The lines' JSON values parsed as one array: one call instead of one per line.
    lines: list[tuple[int, int, StoredLine]] = []
    for name, line in zip(fields, json.loads(b"[" + b",".join(values) + b"]"), strict=True):
        added_ms = int(line["t"])
        stored = StoredLine(
            item_id=line["id"],
            key=_key(name),
            quantity=int(line["q"]),
            added_at=datetime.fromtimestamp(added_ms / 1000, tz=UTC),
        )
        lines.append((added_ms, int(line.get("n", 0)), stored))
    lines.sort(key=lambda each: (each[0], each[1], each[2].item_id))
    return StoredCart(cart_id=cart_id, lines=[each[2] for each in lines])


class RedisCartStore:
    def __init__(self, redis: Redis, *, prefix: str, guest_ttl_seconds: int) -> None:
        self._pipeline = auto_pipeline(redis)
        self.prefix = prefix
        self.guest_ttl_seconds = guest_ttl_seconds
        self._set = redis.register_script(_SET)
        self._remove = redis.register_script(_REMOVE)
        self._take = redis.register_script(_TAKE)
        self._merge = redis.register_script(_MERGE)

    def key(self, owner: Owner) -> str:
        if owner.user_id is not None:
            return f"{self.prefix}cart:{owner.user_id}"
        return f"{self.prefix}cart:guest:{owner.guest_cart_id}"

    async def load(self, owner: Owner, *, now: datetime) -> StoredCart | None:
        return _cart(_flat(await self._pipeline.execute("HGETALL", self.key(owner))))

    async def line_keys(self, owner: Owner, *, now: datetime) -> list[LineKey]:
        fields = await self._pipeline.execute("HKEYS", self.key(owner))
        names = (field.decode() if isinstance(field, bytes) else str(field) for field in fields)
        return [_key(name) for name in names if name != META]

    async def set_quantity(
        self,
        owner: Owner,
        key: LineKey,
        quantity: int,
        *,
        now: datetime,
        new_cart_id: str,
        new_item_id: str,
        max_lines: int,
        expires_at: datetime | None,
    ) -> StoredCart:
        ttl = self.guest_ttl_seconds if owner.guest_cart_id is not None else 0
        cart_id = owner.guest_cart_id or new_cart_id
        args: list[str | int] = [_field(key), quantity, new_item_id, _ms(now), cart_id, max_lines, ttl]
        try:
            flat = await self._pipeline.run_script(self._set, keys=[self.key(owner)], args=args)
        except ResponseError as exc:
            if "CART_FULL" in str(exc):
                raise CartFull() from exc
            raise
        return _cart(flat) or StoredCart(cart_id=cart_id, lines=[])

    async def take_out(self, owner: Owner, lines: list[tuple[LineKey, int]], *, now: datetime) -> None:
        if lines:
            await self._pipeline.run_script(
                self._take, keys=[self.key(owner)], args=[x for key, q in lines for x in (_field(key), q)]
            )

    async def remove(self, owner: Owner, item_id: str, *, now: datetime) -> bool:
        return bool(await self._pipeline.run_script(self._remove, keys=[self.key(owner)], args=[item_id]))

    async def merge(
        self,
        source: Owner,
        into: Owner,
        caps: list[MergeCap],
        *,
        now: datetime,
        new_cart_id: str,
        default_cap: int,
        max_lines: int,
    ) -> StoredCart | None:
        args: list[str | int] = [new_cart_id, max_lines, default_cap]
        for cap in caps:
            args += [_field(cap.key), cap.cap]
        flat = await self._pipeline.run_script(self._merge, keys=[self.key(into), self.key(source)], args=args)
        return _cart(flat)

    async def purge_expired(self, *, now: datetime, limit: int = 1000) -> int:
        return 0  # guest carts carry a TTL: Redis drops them itself


def _flat(answer: Any) -> list[Any]:
    """HGETALL answers a dict when redis-py parses it; the scripts' raw answer is a flat list."""
    if isinstance(answer, dict):
        return [x for pair in answer.items() for x in pair]
    return list(answer)
