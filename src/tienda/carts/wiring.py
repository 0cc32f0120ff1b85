"""Builds the cart service from the platform, once per process."""

from __future__ import annotations

from datetime import timedelta

from tienda.carts.redis_store import RedisCartStore
from tienda.carts.repository import SqlCartStore
from tienda.carts.service import CartService
from tienda.carts.store import CartStore
from tienda.catalog.client import catalog_client
from tienda.inventory.client import inventory_client
from tienda.platform.jobs import Job
from tienda.platform.runtime import Platform


def cart_store(platform: Platform) -> CartStore:
    settings = platform.settings
    kind = settings.cart_store or ("redis" if platform.redis is not None else "sql")
    if kind == "redis":
        if platform.redis is None:
            raise RuntimeError("TIENDA_CART_STORE=redis needs TIENDA_REDIS_URL")
        return RedisCartStore(
            platform.redis, prefix=settings.redis_prefix, guest_ttl_seconds=settings.guest_cart_ttl_seconds
        )
    return SqlCartStore(platform.db("carts"))


def cart_service(platform: Platform) -> CartService:
    def build(p: Platform) -> CartService:
        settings = p.settings
        return CartService(
            store=cart_store(p),
            catalog=catalog_client(p),
            inventory=inventory_client(p),
            tokens=p.tokens,
            clock=p.clock,
            currency=settings.default_currency,
            max_quantity=settings.cart_max_quantity,
            max_lines=settings.cart_max_lines,
            guest_ttl=timedelta(seconds=settings.guest_cart_ttl_seconds),
        )

    return platform.service("carts", build)


def cart_jobs(platform: Platform) -> list[Job]:
    async def purge_expired() -> int:
        return await cart_service(platform).purge_expired()

    return [Job(name="carts.purge_expired", interval_seconds=platform.settings.cart_purge_seconds, run=purge_expired)]
