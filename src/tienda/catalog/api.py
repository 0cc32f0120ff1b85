"""Routes of the catalog (SEED.md 5.2): products and the category tree."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tienda.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ImageIn,
    ImageRead,
    ProductCreate,
    ProductPage,
    ProductRead,
    ProductUpdate,
    Sort,
)
from tienda.catalog.service import CatalogService
from tienda.platform.auth import Admin, OptionalUser
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import error_responses
from tienda.platform.pagination import Page, PageQuery
from tienda.platform.runtime import Platform

products = APIRouter(prefix="/products", tags=["catalog"])
categories = APIRouter(prefix="/categories", tags=["catalog"])


async def _service(request: Request) -> CatalogService:
    service: CatalogService | None = getattr(request.app.state, "catalog_service", None)
    if service is None:
        platform: Platform = request.app.state.platform
        service = request.app.state.catalog_service = CatalogService(
            clock=platform.clock,
            cache=platform.cache,
            cache_ttl=platform.settings.product_cache_ttl_seconds,
            listing_ttl=platform.settings.listing_cache_ttl_seconds,
        )
    return service


Service = Annotated[CatalogService, Depends(_service)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work("catalog"))]
ReadUow = Annotated[UnitOfWork, Depends(unit_of_work("catalog", readonly=True))]


# -- categories -------------------------------------------------------------------------


@categories.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a category (admin)",
    response_model=CategoryRead,
    responses=error_responses(400, 401, 403, 409),
)
async def create_category(body: CategoryCreate, _admin: Admin, service: Service, uow: Uow) -> CategoryRead:
    created = await service.create_category(uow, name=body.name, slug=body.slug, parent_id=body.parent_id)
    await uow.commit()
    return created


@categories.get("", summary="List categories", response_model=Page[CategoryRead], responses=error_responses(400))
async def list_categories(service: Service, uow: ReadUow, page: PageQuery) -> Page[CategoryRead]:
    items, total = await service.categories(uow, offset=page.offset, limit=page.size)
    return Page(items=items, page=page.page, size=page.size, total=total)


@categories.get("/{categoryId}", summary="Get a category", response_model=CategoryRead, responses=error_responses(404))
async def get_category(categoryId: str, service: Service, uow: ReadUow) -> CategoryRead:
    return await service.category(uow, category_id=categoryId)


@categories.patch(
    "/{categoryId}",
    summary="Rename or move a category (admin)",
    description="Only the fields sent change; `parentId: null` moves it to the root. A category cannot "
    "move under itself or one of its sub-categories (409).",
    response_model=CategoryRead,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def update_category(
    categoryId: str, body: CategoryUpdate, _admin: Admin, service: Service, uow: Uow
) -> CategoryRead:
    updated = await service.update_category(uow, category_id=categoryId, changes=body.model_dump(exclude_unset=True))
    await uow.commit()
    await service.new_listing_generation()  # facets name categories
    return updated


@categories.delete(
    "/{categoryId}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an empty category (admin)",
    responses=error_responses(401, 403, 404, 409),
)
async def delete_category(categoryId: str, _admin: Admin, service: Service, uow: Uow) -> Response:
    await service.delete_category(uow, category_id=categoryId)
    await uow.commit()
    await service.new_listing_generation()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- products ---------------------------------------------------------------------------


@products.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a product (admin)",
    description="With variants and images. The product stays unpublished (`isActive: false`) until "
    "`POST /api/v1/products/{productId}/publish`.",
    response_model=ProductRead,
    responses=error_responses(400, 401, 403, 409),
)
async def create_product(body: ProductCreate, _admin: Admin, service: Service, uow: Uow) -> ProductRead:
    fields = body.model_dump(exclude={"variants", "images"})
    created = await service.create_product(uow, fields=fields, variants=body.variants, images=body.images)
    await uow.commit()
    return created


@products.get(
    "",
    summary="List published products with facets",
    description="Filters combine; `category` (a `cat_` id or a slug) includes its sub-categories. Facets "
    "(brand, category, price range) are counted over the whole filtered result.",
    response_model=ProductPage,
    responses=error_responses(400),
)
async def list_products(
    request: Request,
    service: Service,
    page: PageQuery,
    category: Annotated[str | None, Query(max_length=255, description="A category id or slug.")] = None,
    brand: Annotated[str | None, Query(max_length=255)] = None,
    minPrice: Annotated[Decimal | None, Query(ge=0, max_digits=12, decimal_places=2)] = None,
    maxPrice: Annotated[Decimal | None, Query(ge=0, max_digits=12, decimal_places=2)] = None,
    sort: Sort = "newest",
) -> Response:
    db = request.app.state.platform.db("catalog")
    query = {
        "category": category,
        "brand": brand,
        "min": minPrice,
        "max": maxPrice,
        "sort": sort,
        "page": page.page,
        "size": page.size,
    }

    async def render() -> bytes:
        async with db.reader() as uow:
            items, total, facets = await service.listing(
                uow,
                category=category,
                brand=brand,
                min_price=minPrice,
                max_price=maxPrice,
                sort=sort,
                offset=page.offset,
                limit=page.size,
            )
        page_body = ProductPage(items=items, page=page.page, size=page.size, total=total, facets=facets)
        return page_body.model_dump_json(by_alias=True).encode()

    # Popular pages come from the cache; any product write starts a new generation of it.
    return Response(await service.cached_listing(query=query, render=render), media_type="application/json")


@products.get(
    "/{productId}",
    summary="Get a product",
    description="The public sees published products only; admins see every product, deleted ones too.",
    response_model=ProductRead,
    responses=error_responses(401, 404),
)
async def get_product(productId: str, request: Request, principal: OptionalUser, service: Service) -> Response:
    db = request.app.state.platform.db("catalog")
    if principal is not None and principal.is_admin:
        async with db.reader() as uow:
            product = await service.product(uow, product_id=productId, admin=True)
        return Response(product.model_dump_json(by_alias=True), media_type="application/json")
    # The public view is served from the cache; writes refresh it once they commit.
    return Response(await service.public_product(db, product_id=productId), media_type="application/json")


@products.put(
    "/{productId}",
    summary="Update a product (admin)",
    description="Only the fields sent change. `variants`, when sent, is the full new list (entries with "
    "`variantId` change that variant, others are added, variants left out are removed); `images`, "
    "when sent, replaces the list.",
    response_model=ProductRead,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def update_product(productId: str, body: ProductUpdate, _admin: Admin, service: Service, uow: Uow) -> ProductRead:
    changes = body.model_dump(exclude_unset=True, exclude={"variants", "images"})
    updated = await service.update_product(
        uow,
        product_id=productId,
        changes=changes,
        variants=body.variants if "variants" in body.model_fields_set else None,
        images=body.images if "images" in body.model_fields_set else None,
    )
    await uow.commit()
    await service.publish_to_cache(productId, updated)
    return updated


@products.delete(
    "/{productId}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a product (admin)",
    description="Soft by default: hidden from the public, still visible to admins. `?hard=true` removes it.",
    responses=error_responses(401, 403, 404),
)
async def delete_product(
    productId: str,
    _admin: Admin,
    service: Service,
    uow: Uow,
    hard: Annotated[bool, Query(description="Remove the product for good.")] = False,
) -> Response:
    await service.delete_product(uow, product_id=productId, hard=hard)
    await uow.commit()
    await service.publish_to_cache(productId, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@products.post(
    "/{productId}/publish",
    summary="Publish a product (admin)",
    response_model=ProductRead,
    responses=error_responses(401, 403, 404, 409),
)
async def publish(productId: str, _admin: Admin, service: Service, uow: Uow) -> ProductRead:
    product = await service.set_published(uow, product_id=productId, published=True)
    await uow.commit()
    await service.publish_to_cache(productId, product)
    return product


@products.post(
    "/{productId}/unpublish",
    summary="Unpublish a product (admin)",
    response_model=ProductRead,
    responses=error_responses(401, 403, 404),
)
async def unpublish(productId: str, _admin: Admin, service: Service, uow: Uow) -> ProductRead:
    product = await service.set_published(uow, product_id=productId, published=False)
    await uow.commit()
    await service.publish_to_cache(productId, product)
    return product


@products.post(
    "/{productId}/images",
    status_code=status.HTTP_201_CREATED,
    summary="Add an image URL to a product (admin)",
    description="Without `position` the image goes last; position 0 makes it the primary image.",
    response_model=ImageRead,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def add_image(productId: str, body: ImageIn, _admin: Admin, service: Service, uow: Uow) -> ImageRead:
    image, product = await service.add_image(uow, product_id=productId, image=body)
    await uow.commit()
    await service.publish_to_cache(productId, product)
    return image
