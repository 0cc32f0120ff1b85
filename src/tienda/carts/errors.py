"""Domain errors of carts."""

from __future__ import annotations

from tienda.platform.errors import BadRequest, Conflict, NotFound, Unauthorized


class CartTokenInvalid(Unauthorized):
    code = "CART_TOKEN_INVALID"
    message = "The cart token is not one this shop issued"


class CartTokenExpired(Unauthorized):
    code = "CART_TOKEN_EXPIRED"
    message = "The cart token has expired; the guest cart is gone"


class CartItemNotFound(NotFound):
    code = "CART_ITEM_NOT_FOUND"
    message = "No such line in your cart"


class ProductUnavailable(NotFound):
    code = "PRODUCT_NOT_FOUND"
    message = "No such product for sale"


class VariantRequired(BadRequest):
    code = "VARIANT_REQUIRED"
    message = "This product comes in variants: choose one by variantId"


class VariantNotFound(NotFound):
    code = "VARIANT_NOT_FOUND"
    message = "The product has no such variant"


class NotEnoughStock(Conflict):
    code = "INSUFFICIENT_STOCK"
    message = "Not that many in stock"


class CartFull(Conflict):
    code = "CART_FULL"
    message = "The cart holds as many lines as it may"


class CurrencyMismatch(Conflict):
    code = "CURRENCY_MISMATCH"
    message = "The product is priced in another currency than the shop's"
