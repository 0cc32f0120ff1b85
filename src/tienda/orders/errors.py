"""Domain errors of orders."""

from __future__ import annotations

from tienda.platform.errors import AppError, Conflict, NotFound


class CouponNotFound(NotFound):
    code = "COUPON_NOT_FOUND"
    message = "No such coupon"


class CouponCodeTaken(Conflict):
    code = "COUPON_CODE_TAKEN"
    message = "A coupon with this code exists"


class CouponInUse(Conflict):
    code = "COUPON_IN_USE"
    message = "The coupon has been used: deactivate it (isActive: false) instead of deleting it"


class OrderNotFound(NotFound):
    code = "ORDER_NOT_FOUND"
    message = "No such order"


class CartEmpty(Conflict):
    code = "CART_EMPTY"
    message = "Your cart is empty"


class CartNotYours(NotFound):
    code = "CART_NOT_FOUND"
    message = "No such cart of yours"


class ItemsUnavailable(Conflict):
    code = "CART_HAS_UNAVAILABLE_ITEMS"
    message = "Some items in your cart cannot be bought as they are; update the cart and try again"


class AddressNotFound(NotFound):
    code = "ADDRESS_NOT_FOUND"
    message = "No such address of yours"


class CouponNotApplicable(Conflict):
    code = "COUPON_NOT_APPLICABLE"
    message = "This coupon cannot be used on this order"


class OutOfStock(Conflict):
    code = "INSUFFICIENT_STOCK"
    message = "Not enough stock for every item; the order failed and nothing was charged"


class IllegalStatusMove(Conflict):
    code = "ILLEGAL_STATUS_TRANSITION"
    message = "The order cannot move to that status from where it is"


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "This Idempotency-Key was used with a different request"


class PaymentGatewayDown(AppError):
    status = 502
    code = "PAYMENT_GATEWAY_ERROR"
    message = "The payment gateway could not open a payment: the order failed and nothing was charged"


class NotRefundable(Conflict):
    code = "NOT_REFUNDABLE"
    message = "Nothing of this order's payment can be refunded"


class RefundTooLarge(Conflict):
    code = "REFUND_EXCEEDS_CAPTURED"
    message = "The refund is more than what is left of the payment"


class RefundPending(AppError):
    status = 502
    code = "REFUND_PENDING"
    message = "The payment gateway did not take the refund yet; it is sent again automatically"
