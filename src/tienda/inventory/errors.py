"""Domain errors of inventory."""

from __future__ import annotations

from tienda.platform.errors import Conflict, NotFound


class InsufficientStock(Conflict):
    code = "INSUFFICIENT_STOCK"
    message = "Not enough stock for every item; nothing was reserved"


class StockItemNotFound(NotFound):
    code = "STOCK_ITEM_NOT_FOUND"
    message = "No stock is kept for this product"


class ReservationNotFound(NotFound):
    code = "RESERVATION_NOT_FOUND"
    message = "No reservation for this order"


class BelowReserved(Conflict):
    code = "STOCK_BELOW_RESERVED"
    message = "Stock cannot go below what is reserved (or below zero)"


class ReservationClosed(Conflict):
    code = "RESERVATION_CLOSED"
    message = "The reservation of this order was released or has expired"


class ConcurrentChange(Conflict):
    """Another request created the same row first; the route tries once more."""

    code = "CONCURRENT_CHANGE"
    message = "Another request changed this at the same time; try again"
