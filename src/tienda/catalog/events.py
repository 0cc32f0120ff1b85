"""Events the catalog publishes (search and, later, carts and orders consume them)."""

from __future__ import annotations

PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
PRODUCT_DELETED = "product.deleted"
PRODUCT_PUBLISHED = "product.published"
PRODUCT_UNPUBLISHED = "product.unpublished"
