"""Domain errors of orders."""

from __future__ import annotations

from tienda.platform.errors import Conflict, NotFound


class CouponNotFound(NotFound):
    code = "COUPON_NOT_FOUND"
    message = "No such coupon"


class CouponCodeTaken(Conflict):
    code = "COUPON_CODE_TAKEN"
    message = "A coupon with this code exists"


class CouponInUse(Conflict):
    code = "COUPON_IN_USE"
    message = "The coupon has been used: deactivate it (isActive: false) instead of deleting it"
