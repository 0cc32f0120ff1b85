"""The SQL cart store: carts and cart_items (SEED.md 4.3). Each call is one transaction of
its own; a write locks the cart's row first, so concurrent writes to one cart take turns and
the line limit holds. A cart that is not there yet is made first, in a transaction of its own
(see `_make_cart`), and the write then locks it."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tienda.carts.domain import merged_quantity
from tienda.carts.errors import CartFull
from tienda.carts.models import Cart, CartItem
from tienda.carts.store import LineKey, MergeCap, Owner, StoredCart, StoredLine
from tienda.platform.db import Database
from tienda.platform.ids import new_public_id

NO_VARIANT = ""


def _variant(key: LineKey) -> str:
    return key.variant_id or NO_VARIANT


def _where(owner: Owner, now: datetime) -> object:
    if owner.user_id is not None:
        return Cart.user_id == owner.user_id
    return (Cart.cart_id == owner.guest_cart_id) & Cart.user_id.is_(None) & (Cart.expires_at > now)


async def _cart(session: AsyncSession, owner: Owner, now: datetime, *, for_update: bool = False) -> Cart | None:
    query = select(Cart).where(_where(owner, now))  # type: ignore[arg-type]
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def _items(session: AsyncSession, cart: Cart) -> list[CartItem]:
    query = select(CartItem).where(CartItem.cart_id == cart.id).order_by(CartItem.added_at, CartItem.id)
    return list(await session.scalars(query))


async def _delete_carts(session: AsyncSession, where: Any) -> None:
    """Carts, and with them their lines (ON DELETE CASCADE, on every database we run on)."""
    await session.execute(delete(Cart).where(where))


class _NoCart(Exception):
    """The owner has no cart to lock yet: make one, then write again."""


def _stored(cart: Cart, items: list[CartItem]) -> StoredCart:
    return StoredCart(
        cart_id=cart.cart_id,
        lines=[
            StoredLine(
                item_id=i.item_id,
                key=LineKey(i.product_id, i.variant_id or None),
                quantity=i.quantity,
                added_at=i.added_at,
            )
            for i in items
        ],
    )


class SqlCartStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, owner: Owner, *, now: datetime) -> StoredCart | None:
        async with self.db.reader() as uow:
            cart = await _cart(uow.session, owner, now)
            return _stored(cart, await _items(uow.session, cart)) if cart else None

    async def line_keys(self, owner: Owner, *, now: datetime) -> list[LineKey]:
        stored = await self.load(owner, now=now)
        return [line.key for line in stored.lines] if stored else []

    async def _make_cart(self, owner: Owner, now: datetime, new_cart_id: str, expires_at: datetime | None) -> None:
        """Make the owner's cart, committed, unless a racing first write made it already.

        Not inside the write that needs it: a locking read of a row that is not there takes gap
        locks on MySQL/MariaDB, and two first writes that both insert into that gap deadlock (the
        server then rolls back the whole transaction, savepoint and all)."""
        async with self.db.uow() as uow:
            if owner.guest_cart_id is not None:  # an expired cart of this token: start it afresh
                await _delete_carts(uow.session, (Cart.cart_id == owner.guest_cart_id) & (Cart.expires_at <= now))
            uow.session.add(
                Cart(
                    cart_id=owner.guest_cart_id or new_cart_id,
                    user_id=owner.user_id,
                    created_at=now,
                    updated_at=now,
                    expires_at=expires_at,
                )
            )
            with contextlib.suppress(IntegrityError):  # the racing write's cart it is
                await uow.commit()

    async def _locked_cart(
        self, session: AsyncSession, owner: Owner, now: datetime, expires_at: datetime | None
    ) -> Cart:
        """The owner's cart, locked; `_NoCart` when there is none yet."""
        cart = await _cart(session, owner, now, for_update=True)
        if cart is None:
            raise _NoCart()
        cart.updated_at = now
        if owner.guest_cart_id is not None:
            cart.expires_at = expires_at
        return cart

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
        for _ in range(3):
            try:
                return await self._set_quantity(owner, key, quantity, now, new_item_id, max_lines, expires_at)
            except _NoCart:
                await self._make_cart(owner, now, new_cart_id, expires_at)
        raise RuntimeError(f"the cart of {owner} was made but cannot be found")

    async def _set_quantity(
        self,
        owner: Owner,
        key: LineKey,
        quantity: int,
        now: datetime,
        new_item_id: str,
        max_lines: int,
        expires_at: datetime | None,
    ) -> StoredCart:
        async with self.db.uow() as uow:
            session = uow.session
            cart = await self._locked_cart(session, owner, now, expires_at)
            items = await _items(session, cart)
            line = next((i for i in items if i.product_id == key.product_id and i.variant_id == _variant(key)), None)
            if quantity == 0:
                if line is not None:
                    await session.delete(line)
                    items.remove(line)
            elif line is not None:
                line.quantity, line.updated_at = quantity, now
            else:
                if len(items) >= max_lines:
                    raise CartFull()
                line = CartItem(
                    item_id=new_item_id,
                    cart_id=cart.id,
                    product_id=key.product_id,
                    variant_id=_variant(key),
                    quantity=quantity,
                    added_at=now,
                    updated_at=now,
                )
                session.add(line)
                items.append(line)
            await session.flush()
            await uow.commit()
            return _stored(cart, items)

    async def take_out(self, owner: Owner, lines: list[tuple[LineKey, int]], *, now: datetime) -> None:
        async with self.db.uow() as uow:
            cart = await _cart(uow.session, owner, now, for_update=True)
            if cart is None:
                return
            less = {(key.product_id, _variant(key)): quantity for key, quantity in lines}
            for item in await _items(uow.session, cart):
                taken = less.get((item.product_id, item.variant_id))
                if taken is None:
                    continue
                if item.quantity > taken:
                    item.quantity, item.updated_at = item.quantity - taken, now
                else:
                    await uow.session.delete(item)
                cart.updated_at = now
            await uow.commit()

    async def remove(self, owner: Owner, item_id: str, *, now: datetime) -> bool:
        async with self.db.uow() as uow:
            cart = await _cart(uow.session, owner, now, for_update=True)
            if cart is None:
                return False
            result = await uow.session.execute(
                delete(CartItem).where(CartItem.cart_id == cart.id, CartItem.item_id == item_id)
            )
            removed = bool(getattr(result, "rowcount", 0))
            if removed:  # a refused removal leaves the cart untouched (rolled back on exit)
                cart.updated_at = now
                await uow.commit()
            return removed

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
        for _ in range(3):
            try:
                return await self._merge(source, into, caps, now, default_cap, max_lines)
            except _NoCart:
                await self._make_cart(into, now, new_cart_id, None)
        raise RuntimeError(f"the cart of {into} was made but cannot be found")

    async def _merge(
        self, source: Owner, into: Owner, caps: list[MergeCap], now: datetime, default_cap: int, max_lines: int
    ) -> StoredCart | None:
        cap_of = {c.key: c.cap for c in caps}
        async with self.db.uow() as uow:
            session = uow.session
            guest = await _cart(session, source, now, for_update=True)
            if guest is None:
                cart = await _cart(session, into, now)
                return _stored(cart, await _items(session, cart)) if cart else None
            cart = await self._locked_cart(session, into, now, None)
            mine = {(i.product_id, i.variant_id): i for i in await _items(session, cart)}
            for theirs in await _items(session, guest):
                key = LineKey(theirs.product_id, theirs.variant_id or None)
                cap = cap_of.get(key, default_cap)
                line = mine.get((theirs.product_id, theirs.variant_id))
                if line is not None:
                    line.quantity, line.updated_at = merged_quantity(line.quantity, theirs.quantity, cap), now
                elif len(mine) < max_lines and (quantity := merged_quantity(None, theirs.quantity, cap)) > 0:
                    line = CartItem(
                        item_id=new_public_id("ci"),
                        cart_id=cart.id,
                        product_id=theirs.product_id,
                        variant_id=theirs.variant_id,
                        quantity=quantity,
                        added_at=theirs.added_at,
                        updated_at=now,
                    )
                    session.add(line)
                    mine[(line.product_id, line.variant_id)] = line
            await session.flush()
            await _delete_carts(session, Cart.id == guest.id)
            await uow.commit()
            ordered = sorted(mine.values(), key=lambda i: (i.added_at, i.id or 0))
            return _stored(cart, ordered)

    async def purge_expired(self, *, now: datetime, limit: int = 1000) -> int:
        async with self.db.uow() as uow:
            ids = list(
                await uow.session.scalars(
                    select(Cart.id).where(Cart.user_id.is_(None), Cart.expires_at <= now).limit(limit)
                )
            )
            if ids:
                await _delete_carts(uow.session, Cart.id.in_(ids))
            await uow.commit()
            return len(ids)
