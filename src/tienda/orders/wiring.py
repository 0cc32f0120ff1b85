"""Builds the orders module's services from the platform, once per process."""

from __future__ import annotations

from tienda.orders.coupons import CouponService
from tienda.platform.runtime import Platform


def coupon_service(platform: Platform) -> CouponService:
    return platform.service("orders.coupons", lambda p: CouponService(clock=p.clock))
