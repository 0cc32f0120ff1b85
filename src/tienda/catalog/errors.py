"""Domain errors of the catalog."""

from __future__ import annotations

from tienda.platform.errors import BadRequest, Conflict, NotFound, PayloadTooLarge


class CategoryNotFound(NotFound):
    code = "CATEGORY_NOT_FOUND"
    message = "Category not found"


class UnknownCategory(BadRequest):
    code = "UNKNOWN_CATEGORY"
    message = "No such category"


class SlugTaken(Conflict):
    code = "SLUG_TAKEN"
    message = "A category with this slug already exists"


class CategoryCycle(Conflict):
    code = "CATEGORY_CYCLE"
    message = "A category cannot be moved under itself or one of its sub-categories"


class CategoryInUse(Conflict):
    code = "CATEGORY_IN_USE"
    message = "The category has sub-categories or products"


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"
    message = "Product not found"


class ProductIdTaken(Conflict):
    code = "PRODUCT_ID_TAKEN"
    message = "A product with this productId already exists"


class SkuTaken(Conflict):
    code = "SKU_TAKEN"
    message = "SKU already in use"


class UnknownVariant(BadRequest):
    code = "UNKNOWN_VARIANT"
    message = "No such variant on this product"


class ProductDeleted(Conflict):
    code = "PRODUCT_DELETED"
    message = "The product is deleted"


class ImageLimitReached(Conflict):
    code = "IMAGE_LIMIT"
    message = "A product has at most 20 images"


class UnsupportedImage(BadRequest):
    code = "UNSUPPORTED_IMAGE"
    message = "The file is not a JPEG, PNG, WebP or GIF image"


class ImageTooLarge(PayloadTooLarge):
    code = "IMAGE_TOO_LARGE"
    message = "The image is too large"


class ImageFileNotFound(NotFound):
    code = "IMAGE_NOT_FOUND"
    message = "Image not found"
