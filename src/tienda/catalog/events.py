"""Events the catalog publishes (search and, later, carts and orders consume them)."""

from __future__ import annotations

PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
PRODUCT_DELETED = "product.deleted"
PRODUCT_PUBLISHED = "product.published"
PRODUCT_UNPUBLISHED = "product.unpublished"
PRODUCT_AVAILABILITY_CHANGED = "product.availability_changed"
"""A published product went out of stock or came back (the `product` in it as it now is). Not
sent for every unit sold or reserved: only when whether it can be bought at all changes."""
