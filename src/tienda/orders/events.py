"""Events orders publishes (notifications, and whoever else cares, consume them)."""

from __future__ import annotations

from typing import Any

from tienda.orders.models import Order

ORDER_CREATED = "order.created"
ORDER_CONFIRMED = "order.confirmed"
ORDER_FAILED = "order.failed"
ORDER_CANCELLED = "order.cancelled"
ORDER_PACKED = "order.packed"
ORDER_SHIPPED = "order.shipped"
ORDER_DELIVERED = "order.delivered"
ORDER_REFUNDED = "order.refunded"


def order_payload(order: Order) -> dict[str, Any]:
    """What every order event carries: enough for a notification without asking back."""
    return {
        "orderId": order.order_id,
        "userId": order.user_id,
        "status": order.status,
        "paymentStatus": order.payment_status,
        "paymentMethod": order.payment_method,
        "currency": order.currency,
        "totalAmount": str(order.total_amount),
        "trackingNumber": order.tracking_number,
        "items": [
            {
                "productId": i.product_id,
                "variantId": i.variant_id,
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "unitPrice": str(i.unit_price),
            }
            for i in order.items
        ],
    }
