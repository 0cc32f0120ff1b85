"""Domain errors of payments."""

from __future__ import annotations

from tienda.platform.errors import AppError, BadRequest, Conflict, NotFound


class PaymentNotFound(NotFound):
    code = "PAYMENT_NOT_FOUND"
    message = "No such payment"


class ProviderNotFound(NotFound):
    code = "PAYMENT_PROVIDER_NOT_FOUND"
    message = "No such payment provider here"


class InvalidWebhookSignature(BadRequest):
    code = "INVALID_SIGNATURE"
    message = "The webhook signature does not verify"


class NotRefundable(Conflict):
    code = "NOT_REFUNDABLE"
    message = "This payment has nothing captured left to refund"


class RefundTooLarge(Conflict):
    code = "REFUND_EXCEEDS_CAPTURED"
    message = "The refund is more than what is left of the payment"


class PaymentMismatch(Conflict):
    code = "PAYMENT_MISMATCH"
    message = "The order's payment has another amount or currency"


class GatewayUnavailable(AppError):
    status = 502
    code = "PAYMENT_GATEWAY_ERROR"
    message = "The payment gateway refused or could not be reached; nothing was charged or refunded"
