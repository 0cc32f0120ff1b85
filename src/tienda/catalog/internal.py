"""`/internal/catalog`: the catalog client protocol (client.py) for services in other processes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from tienda.catalog.client import CategoryInfo, InProcessCatalogClient, ProductInfo, ProductLookup, PublishedPage
from tienda.platform.auth import TokenService
from tienda.platform.errors import BadRequest
from tienda.platform.web import internal_router

router = internal_router("catalog")

CURSOR = "catalog.published-cursor"
CURSOR_TTL_SECONDS = 3600
"""A page's cursor serves for the next page within this long (a reindex reads on at once)."""


def _catalog(request: Request) -> InProcessCatalogClient:
    return InProcessCatalogClient(request.app.state.platform)


@router.get("/categories")
async def categories(request: Request) -> list[CategoryInfo]:
    return await _catalog(request).categories()


@router.get("/published-products")
async def published_products(
    request: Request,
    size: Annotated[int, Query(ge=1, le=5000)] = 1000,
    after: Annotated[str | None, Query(max_length=512)] = None,
) -> PublishedPage:
    """Every published product, a page at a time, in storage order. The cursor is signed, so
    the storage position it holds stays ours and cannot be made up."""
    tokens: TokenService = request.app.state.platform.tokens
    position = 0
    if after is not None:
        try:
            held = tokens.read(CURSOR, after)
        except ValueError as exc:
            raise BadRequest("Not a cursor of this catalog", code="INVALID_CURSOR") from exc
        if held is None:
            raise BadRequest("The cursor has expired; start again", code="CURSOR_EXPIRED")
        position = int(held)
    items, position = await _catalog(request).published_page(after=position, limit=size)
    more = len(items) == size
    return PublishedPage(
        items=items, next=tokens.sign(CURSOR, str(position), ttl_seconds=CURSOR_TTL_SECONDS)[0] if more else None
    )


@router.post("/products/lookup")
async def products(body: ProductLookup, request: Request) -> list[ProductInfo]:
    return list((await _catalog(request).products(body.product_ids)).values())
