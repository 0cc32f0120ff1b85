"""Builds the orders module's services from the platform, once per process."""

from __future__ import annotations

from datetime import timedelta

from tienda.carts.client import carts_client
from tienda.catalog.client import catalog_client
from tienda.inventory.client import inventory_client
from tienda.orders.checkout import Checkout
from tienda.orders.coupons import CouponService
from tienda.orders.domain import ShippingTerms
from tienda.orders.saga import Saga
from tienda.orders.service import OrderService
from tienda.payments.client import payments_client
from tienda.platform.events import Consumer
from tienda.platform.jobs import Job
from tienda.platform.runtime import Platform
from tienda.users.client import users_client


def coupon_service(platform: Platform) -> CouponService:
    return platform.service("orders.coupons", lambda p: CouponService(clock=p.clock))


def saga(platform: Platform) -> Saga:
    return platform.service(
        "orders.saga",
        lambda p: Saga(
            db=p.db("orders"),
            carts=carts_client(p),
            inventory=inventory_client(p),
            payments=payments_client(p),
            coupons=coupon_service(p),
            clock=p.clock,
            reservation_ttl=timedelta(seconds=p.settings.reservation_ttl_seconds),
        ),
    )


def checkout(platform: Platform) -> Checkout:
    def build(p: Platform) -> Checkout:
        s = p.settings
        return Checkout(
            db=p.db("orders"),
            carts=carts_client(p),
            catalog=catalog_client(p),
            users=users_client(p),
            saga=saga(p),
            coupons=coupon_service(p),
            clock=p.clock,
            currency=s.default_currency,
            default_tax_rate=s.default_tax_rate,
            tax_rates=dict(s.tax_rates),
            shipping=ShippingTerms(fee=s.shipping_fee, free_from=s.free_shipping_from),
            reservation_ttl=timedelta(seconds=s.reservation_ttl_seconds),
        )

    return platform.service("orders.checkout", build)


def order_service(platform: Platform) -> OrderService:
    return platform.service(
        "orders",
        lambda p: OrderService(
            db=p.db("orders"), saga=saga(p), payments=payments_client(p), coupons=coupon_service(p), clock=p.clock
        ),
    )


def order_jobs(platform: Platform) -> list[Job]:
    async def resume() -> int:
        return await saga(platform).resume()

    return [Job(name="orders.resume", interval_seconds=platform.settings.reservation_sweep_seconds, run=resume)]


def order_consumers(platform: Platform) -> list[Consumer]:
    return saga(platform).consumers()
