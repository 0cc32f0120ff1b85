"""DTOs of search: a page of hits with facets, and autocomplete suggestions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from tienda.platform.money import Amount
from tienda.platform.schemas import ReadSchema, examples

SearchSort = Literal["relevance", "price_asc", "price_desc", "newest"]


class SearchHit(ReadSchema):
    """A published product as search shows it (the listing's summary)."""

    product_id: str
    name: str
    price: Amount
    currency: str
    brand: str | None
    category_id: str | None
    image: str | None = Field(description="The primary image's URL.")
    created_at: datetime
    in_stock: bool = Field(
        description="At least one unit can be bought (any variant, or the product without variants). "
        "Follows inventory when the product goes out of stock or comes back; the units themselves are in "
        "the product's detail (`variants[].stock`)."
    )


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


class AttributeValueFacet(ReadSchema):
    value: str
    count: int


class AttributeFacet(ReadSchema):
    name: str = Field(description="Filter with `attr.<name>=<value>`.")
    values: list[AttributeValueFacet]


class SearchFacets(ReadSchema):
    brands: list[BrandFacet]
    categories: list[CategoryFacet]
    price_ranges: list[PriceRangeFacet]
    attributes: list[AttributeFacet]


_HIT_EXAMPLE = {
    "productId": "p_4m8k2x9q7w3e",
    "name": "Men's T-Shirt",
    "price": 499.0,
    "currency": "INR",
    "brand": "BrandX",
    "categoryId": "cat_9f2k3m4n5p6q",
    "image": "https://cdn.example.com/p1.jpg",
    "createdAt": "2026-11-25T18:05:07Z",
    "inStock": True,
}


class SearchPage(ReadSchema):
    """A page of hits, best first (or in the order asked), with facets counted over every hit."""

    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "items": [_HIT_EXAMPLE],
                "page": 1,
                "size": 20,
                "total": 1,
                "query": "tshirt",
                "facets": {
                    "brands": [{"value": "BrandX", "count": 1}],
                    "categories": [{"categoryId": "cat_9f2k3m4n5p6q", "name": "T-Shirts", "count": 1}],
                    "priceRanges": [{"min": 0, "max": 500, "count": 1}, {"min": 5000, "max": None, "count": 0}],
                    "attributes": [{"name": "color", "values": [{"value": "red", "count": 1}]}],
                },
            }
        )
    }

    items: list[SearchHit]
    page: int
    size: int
    total: int
    query: str
    facets: SearchFacets


class Suggestions(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {"query": "run", "completions": ["running", "runner"], "products": [_HIT_EXAMPLE]},
        )
    }

    query: str
    completions: list[str] = Field(description="Words of the catalog that complete the last word typed.")
    products: list[SearchHit] = Field(description="The products best matching what was typed so far.")
