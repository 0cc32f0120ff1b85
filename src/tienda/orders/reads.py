"""An order as the API shows it."""

from __future__ import annotations

from tienda.orders.domain import OrderStatus
from tienda.orders.models import Order
from tienda.orders.schemas import AddressRead, OrderItemRead, OrderRead


def order_read(order: Order) -> OrderRead:
    return OrderRead(
        order_id=order.order_id,
        user_id=order.user_id,
        status=OrderStatus(order.status),
        payment_status=order.payment_status,
        payment_method=order.payment_method,
        payment_id=order.payment_id,
        payment_url=order.payment_url if order.saga_step == "PAYMENT_PENDING" else None,
        currency=order.currency,
        items=[OrderItemRead.model_validate(i) for i in order.items],
        subtotal_amount=order.subtotal_amount,
        discount_amount=order.discount_amount,
        tax_amount=order.tax_amount,
        shipping_amount=order.shipping_amount,
        total_amount=order.total_amount,
        refunded_amount=order.refunded_amount,
        coupon_code=order.coupon_code,
        shipping_address=AddressRead.model_validate(order.shipping_address),
        billing_address=AddressRead.model_validate(order.billing_address),
        tracking_number=order.tracking_number,
        failure_reason=order.failure_reason,
        expires_at=order.expires_at,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )
