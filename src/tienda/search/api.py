"""Routes of search (SEED.md 5.2 item 6, DESIGN.md section 5): full-text search with filters,
sorts and facets, and autocomplete. Mounted before the catalog's `/products/{productId}`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import StringConstraints

from tienda.platform.errors import BadRequest, error_responses
from tienda.platform.pagination import PageQuery
from tienda.search.domain import attribute_filters, parse_filters
from tienda.search.schemas import SearchPage, SearchSort, Suggestions
from tienda.search.service import SearchService
from tienda.search.wiring import search_service

router = APIRouter(prefix="/products", tags=["search"])


async def _service(request: Request) -> SearchService:
    return search_service(request.app.state.platform)


Service = Annotated[SearchService, Depends(_service)]
Text = Annotated[str, StringConstraints(max_length=255)]

SEARCH_DESCRIPTION = """
Words are matched in the name (weighted most), brand, category and description, with English
stemming (`shoes` finds `shoe`), one typo forgiven on words of 5+ letters, and the last word
completed as a prefix (`runn` finds `running`). Every word must match; if no product has them
all, products with any of them are returned. Any text is accepted: there is no query syntax.

Filters combine with AND; repeating `brand` or one `attr.<name>` means either value:
`category` (a `cat_` id or slug, sub-categories included), `brand`, `minPrice`, `maxPrice`,
`attr.<name>=<value>` on variant attributes (`attr.color=red&attr.size=m`, case-insensitive),
and `inStock=true`: only products of which a unit can be bought (any variant; with an
attribute filter too, not necessarily the variant that matched it).
SEED.md's `filters=` says the same in one parameter: comma-separated `key:value` pairs, e.g.
`filters=brand:Stride,color:black,minPrice:500`; `brand`, `category`, `minPrice`, `maxPrice`
are those filters, any other key is an attribute. Explicit parameters win over `filters`.

Facets (brands, categories, price ranges, attributes) are counted over every hit. Results
reflect catalog changes within about a second; a repeated query is served from the cache
until the index changes (at most `TIENDA_SEARCH_CACHE_TTL_SECONDS`, default 5 minutes).
"""


@router.get(
    "/search",
    summary="Search published products",
    description=SEARCH_DESCRIPTION,
    response_model=SearchPage,
    responses=error_responses(400),
    openapi_extra={
        "parameters": [
            {
                "name": "attr.<name>",
                "in": "query",
                "required": False,
                "description": "A variant attribute filter, e.g. `attr.color=red`; repeat for either value.",
                "schema": {"type": "string"},
                "example": "red",
            }
        ]
    },
)
async def search(
    request: Request,
    service: Service,
    page: PageQuery,
    q: Annotated[str, Query(description="What the shopper typed; any text.")] = "",
    category: Annotated[Text | None, Query(description="A category id or slug.")] = None,
    brand: Annotated[list[Text] | None, Query(description="Repeat for either brand.")] = None,
    minPrice: Annotated[Decimal | None, Query(ge=0, max_digits=12, decimal_places=2)] = None,
    maxPrice: Annotated[Decimal | None, Query(ge=0, max_digits=12, decimal_places=2)] = None,
    sort: SearchSort = "relevance",
    inStock: Annotated[
        bool, Query(description="true: only products with at least one unit available; false: all.")
    ] = False,
    filters: Annotated[
        str | None, Query(max_length=2000, description="SEED.md's form: `brand:Stride,color:black,minPrice:500`.")
    ] = None,
) -> Response:
    extra = parse_filters(filters) if filters else None
    attributes = attribute_filters(list(request.query_params.multi_items()))
    min_price, max_price = minPrice, maxPrice
    if extra is not None:
        category = category if category is not None else extra.category
        min_price = min_price if min_price is not None else extra.min_price
        max_price = max_price if max_price is not None else extra.max_price
        for key, values in extra.attributes.items():
            attributes.setdefault(key, set()).update(values)
    brands = [*(brand or []), *(extra.brands if extra else [])]
    if min_price is not None and max_price is not None and min_price > max_price:
        raise BadRequest("minPrice is above maxPrice", code="VALIDATION_FAILED")
    body = await service.search(
        text=q,
        category=category,
        brands=brands,
        min_price=min_price,
        max_price=max_price,
        attributes=attributes,
        sort=sort,
        page=page.page,
        size=page.size,
        available_only=inStock,
        raw_query=request.scope.get("query_string", b""),
    )
    return Response(body, media_type="application/json")


@router.get(
    "/suggest",
    summary="Autocomplete",
    description="As the shopper types: words of the catalog completing the last word, and the "
    "products best matching what was typed so far.",
    response_model=Suggestions,
    responses=error_responses(400),
)
async def suggest(
    service: Service,
    q: Annotated[str, Query(description="What was typed so far.")] = "",
    size: Annotated[int, Query(ge=1, le=20, description="At most this many of each.")] = 8,
) -> Response:
    return Response(await service.suggest(text=q, size=size), media_type="application/json")
