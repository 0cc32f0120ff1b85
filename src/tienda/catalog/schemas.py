"""DTOs of the catalog (SEED.md 5.2 and 6, ProductDTO), camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

import pycountry
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

from tienda.platform.money import Amount
from tienda.platform.schemas import ReadSchema, Schema, examples

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._/-]+$")]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
CategoryRef = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^cat_[a-z0-9]+$")]
ProductRef = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^p_[A-Za-z0-9_-]+$")]
AttrKey = Annotated[str, StringConstraints(min_length=1, max_length=50)]
AttrValue = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Attributes = Annotated[dict[AttrKey, AttrValue], Field(max_length=20, description="A flat object of strings.")]


def _iso_4217(code: str) -> str:
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"), AfterValidator(_iso_4217)
]


def _http_url(url: str) -> str:
    lowered = url.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or len(url) <= len("https://"):
        raise ValueError("must be an http(s) URL")
    if any(c.isspace() for c in url):
        raise ValueError("must not contain white space")
    return url


ImageUrl = Annotated[str, StringConstraints(min_length=10, max_length=1024), AfterValidator(_http_url)]


def _weight(value: Decimal) -> Decimal:
    if value.as_tuple().exponent < -3:  # type: ignore[operator]
        raise ValueError("at most 3 decimal places")
    return value


Weight = Annotated[Decimal, Field(ge=0, max_digits=8, decimal_places=3), AfterValidator(_weight)]


# -- categories -------------------------------------------------------------------------


class CategoryCreate(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples({"name": "T-Shirts", "slug": "t-shirts", "parentId": "cat_3kq7x2m9p4ab"})
    }

    name: Name
    slug: Slug | None = Field(default=None, description="Default: made from the name.")
    parent_id: CategoryRef | None = None


class CategoryUpdate(Schema):
    model_config = Schema.model_config | {"json_schema_extra": examples({"name": "Tees"}, {"parentId": None})}

    name: Name | None = None
    slug: Slug | None = None
    parent_id: CategoryRef | None = Field(default=None, description="null moves the category to the root.")

    @field_validator("name", "slug")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value


class CategoryRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "categoryId": "cat_9f2k3m4n5p6q",
                "name": "T-Shirts",
                "slug": "t-shirts",
                "parentId": "cat_3kq7x2m9p4ab",
                "createdAt": "2026-11-25T18:05:07Z",
            }
        )
    }

    category_id: str
    name: str
    slug: str
    parent_id: str | None
    created_at: datetime


# -- products ---------------------------------------------------------------------------


class VariantIn(Schema):
    variant_id: str | None = Field(
        default=None, max_length=64, description="In an update: the variant to change; omit to add one."
    )
    sku: Sku | None = None
    attributes: Attributes = {}
    price: Amount | None = Field(default=None, description="Default: the product's price.")


class ImageIn(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples({"url": "https://cdn.example.com/p1-back.jpg", "altText": "Back", "position": 1})
    }

    url: ImageUrl
    alt_text: Annotated[str, StringConstraints(max_length=255)] | None = None
    position: int | None = Field(default=None, ge=0, le=1000, description="0 is the primary image.")


class ImageUpload(Schema):
    """The form fields of a multipart image upload, besides its `file`."""

    alt_text: Annotated[str, StringConstraints(max_length=255)] | None = None
    position: int | None = Field(default=None, ge=0, le=1000, description="0 is the primary image.")


def _url_as_image(value: object) -> object:
    return {"url": value} if isinstance(value, str) else value


ImageItem = Annotated[
    ImageIn, BeforeValidator(_url_as_image), Field(description="An image URL, or {url, altText?, position?}.")
]


class ProductCreate(Schema):
    """ProductDTO. `productId` is optional (assigned when absent). A product is created
    unpublished (`isActive: false`) until `POST .../publish`."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {
                "name": "T-Shirt",
                "sku": "TSHIRT",
                "description": "Cotton T-shirt",
                "price": 499.00,
                "brand": "BrandX",
                "categoryId": "cat_9f2k3m4n5p6q",
                "variants": [{"sku": "TSHIRT-RED-M", "attributes": {"color": "red", "size": "M"}, "price": 499}],
                "images": ["https://cdn.example.com/p1.jpg"],
            }
        )
    }

    product_id: ProductRef | None = None
    name: Name
    sku: Sku | None = None
    description: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    price: Amount
    currency: Currency = "INR"
    brand: Name | None = None
    category_id: CategoryRef | None = None
    weight_kg: Weight | None = None
    dimensions: Annotated[str, StringConstraints(max_length=255)] | None = None
    variants: Annotated[list[VariantIn], Field(max_length=100)] = []
    images: Annotated[list[ImageItem], Field(max_length=20)] = []

    @model_validator(mode="after")
    def _new_variants_only(self) -> Self:
        if any(v.variant_id is not None for v in self.variants):
            raise ValueError("variants of a new product cannot name a variantId")
        return self


class ProductUpdate(Schema):
    """Only the fields sent change. `variants`, when sent, is the full new list: entries with a
    `variantId` change that variant, entries without one are added, variants left out are
    removed. `images`, when sent, replaces the image list."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"price": 449.00},
            {
                "variants": [
                    {"variantId": "v_7h2k9m3n4p5q", "price": 449},
                    {"sku": "TSHIRT-RED-L", "attributes": {"size": "L"}},
                ]
            },
        )
    }

    name: Name | None = None
    sku: Sku | None = None
    description: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    price: Amount | None = None
    currency: Currency | None = None
    brand: Name | None = None
    category_id: CategoryRef | None = None
    weight_kg: Weight | None = None
    dimensions: Annotated[str, StringConstraints(max_length=255)] | None = None
    variants: Annotated[list[VariantIn], Field(max_length=100)] | None = None
    images: Annotated[list[ImageItem], Field(max_length=20)] | None = None

    @field_validator("name", "price", "currency", "variants", "images")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value


class VariantRead(ReadSchema):
    variant_id: str
    sku: str | None
    attributes: dict[str, str]
    price: Amount
    stock: int = Field(
        default=0,
        description="Units available to buy (inventory's stock less its reservations), as the catalog last "
        "heard from inventory: it follows inventory within moments. 0 for a variant inventory has never "
        "stocked, which inventory treats as out of stock.",
    )


class ImageRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {"url": "https://cdn.example.com/p1.jpg", "altText": "Front", "position": 0, "isPrimary": True}
        )
    }

    url: str
    alt_text: str | None
    position: int
    is_primary: bool


class ProductRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "productId": "p_4m8k2x9q7w3e",
                "name": "Men's T-Shirt",
                "description": "100% Cotton",
                "sku": "TSHIRT-001",
                "price": 499.00,
                "currency": "INR",
                "brand": "BrandX",
                "categoryId": "cat_9f2k3m4n5p6q",
                "weightKg": None,
                "dimensions": None,
                "variants": [
                    {
                        "variantId": "v_7h2k9m3n4p5q",
                        "sku": "TSHIRT-RED-M",
                        "attributes": {"color": "red", "size": "M"},
                        "price": 499,
                        "stock": 42,
                    }
                ],
                "stock": 42,
                "images": ["https://cdn.example.com/p1.jpg"],
                "isActive": True,
                "deletedAt": None,
                "createdAt": "2026-11-25T18:05:07Z",
                "updatedAt": "2026-11-25T18:05:07Z",
            }
        )
    }

    product_id: str
    name: str
    sku: str | None
    description: str | None
    price: Amount
    currency: str
    brand: str | None
    category_id: str | None
    weight_kg: Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")] | None
    dimensions: str | None
    variants: list[VariantRead]
    stock: int = Field(
        default=0,
        description="Units available of the product: the sum of its variants' `stock`, or, for a product "
        "without variants, its own stock in inventory (0 when inventory has none).",
    )
    images: list[str]
    is_active: bool
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


# -- listing ----------------------------------------------------------------------------

Sort = Literal["price_asc", "price_desc", "newest", "name_asc"]


class ProductSummary(ReadSchema):
    product_id: str
    name: str
    price: Amount
    currency: str
    brand: str | None
    category_id: str | None
    image: str | None = Field(description="The primary image's URL.")
    created_at: datetime


class BrandFacet(ReadSchema):
    value: str
    count: int


class CategoryFacet(ReadSchema):
    category_id: str
    name: str
    count: int


class PriceRangeFacet(ReadSchema):
    min: Amount
    max: Amount | None = Field(description="Exclusive; null for the open top range.")
    count: int


class Facets(ReadSchema):
    brands: list[BrandFacet]
    categories: list[CategoryFacet]
    price_ranges: list[PriceRangeFacet]


class ProductPage(ReadSchema):
    """A page of published products with facets counted over the whole filtered result."""

    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "items": [
                    {
                        "productId": "p_4m8k2x9q7w3e",
                        "name": "Men's T-Shirt",
                        "price": 499.0,
                        "currency": "INR",
                        "brand": "BrandX",
                        "categoryId": "cat_9f2k3m4n5p6q",
                        "image": "https://cdn.example.com/p1.jpg",
                        "createdAt": "2026-11-25T18:05:07Z",
                    }
                ],
                "page": 1,
                "size": 20,
                "total": 1,
                "facets": {
                    "brands": [{"value": "BrandX", "count": 1}],
                    "categories": [{"categoryId": "cat_9f2k3m4n5p6q", "name": "T-Shirts", "count": 1}],
                    "priceRanges": [{"min": 0, "max": 500, "count": 1}, {"min": 5000, "max": None, "count": 0}],
                },
            }
        )
    }

    items: list[ProductSummary]
    page: int
    size: int
    total: int
    facets: Facets
