"""Routes of the catalog (SEED.md 5.2): products and the category tree."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse

from tienda.catalog.errors import ImageFileNotFound
from tienda.catalog.media import CONTENT_TYPES, MediaStore, Upload
from tienda.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    ImageIn,
    ImageRead,
    ImageUpload,
    ProductCreate,
    ProductPage,
    ProductRead,
    ProductUpdate,
    Sort,
)
from tienda.catalog.service import CatalogService
from tienda.catalog.wiring import catalog_service, media_store
from tienda.platform import bodies, web
from tienda.platform.auth import Admin, OptionalUser
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import UnsupportedMediaType, error_responses
from tienda.platform.pagination import Page, PageQuery
from tienda.platform.web import absolute_url

products = APIRouter(prefix="/products", tags=["catalog"])
categories = APIRouter(prefix="/categories", tags=["catalog"])
media = APIRouter(prefix="/media", tags=["catalog"])
"""Uploaded files, served at the root (`/media/...`), not under `/api`."""

FORM_OVERHEAD = 64 * 1024
"""What a multipart upload may add to its file: boundaries, part headers, the other fields."""


async def _service(request: Request) -> CatalogService:
    return catalog_service(request.app.state.platform)


def _media(request: Request) -> MediaStore:
    return media_store(request.app.state.platform)


Service = Annotated[CatalogService, Depends(_service)]
Media = Annotated[MediaStore, Depends(_media)]
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
    await service.categories_changed()
    return created


@categories.get("", summary="List categories", response_model=Page[CategoryRead], responses=error_responses(400))
async def list_categories(request: Request, service: Service, page: PageQuery) -> Page[CategoryRead]:
    every = await service.all_categories(request.app.state.platform.db("catalog"))
    return Page(items=every[page.offset : page.offset + page.size], page=page.page, size=page.size, total=len(every))


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
    await service.categories_changed()
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
    await service.categories_changed()
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
    raw_query: bytes = request.scope.get("query_string", b"")
    body = await service.cached_listing(query=query, raw_query=raw_query, render=render)
    return Response(body, media_type="application/json")


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


_IMAGE_FORM_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "A JPEG, PNG, WebP or GIF image, recognised by its content (not its name or "
            "declared type); at most `TIENDA_MAX_IMAGE_BYTES` (5 MiB by default).",
        },
        "altText": {"type": "string", "maxLength": 255},
        "position": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "0 is the primary image."},
    },
}

_IMAGE_BODY = {
    "required": True,
    "content": {
        bodies.JSON: {
            "schema": {"$ref": "#/components/schemas/ImageIn"},
            "examples": {
                "url": {
                    "summary": "An image hosted elsewhere",
                    "value": {"url": "https://cdn.example.com/p1-back.jpg", "altText": "Back", "position": 1},
                }
            },
        },
        bodies.MULTIPART: {
            "schema": _IMAGE_FORM_SCHEMA,
            "encoding": {"file": {"contentType": ", ".join(CONTENT_TYPES.values())}},
            "examples": {
                "upload": {
                    "summary": "An image file, stored by the shop",
                    "value": {"file": "(the bytes of p1-back.jpg)", "altText": "Back", "position": 1},
                }
            },
        },
    },
}


@products.post(
    "/{productId}/images",
    status_code=status.HTTP_201_CREATED,
    summary="Add an image to a product, by URL or as a file (admin)",
    description="Either a JSON body `{url, altText?, position?}`, or a `multipart/form-data` upload with a "
    "`file` (JPEG, PNG, WebP or GIF) and optional `altText` and `position` fields. An uploaded file is "
    "stored by the shop and served from `/media/products/{productId}/<sha256>.<ext>`; that absolute URL "
    "is the image's `url`. Without `position` the image goes last; position 0 makes it the primary image.",
    response_model=ImageRead,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415),
    openapi_extra={"requestBody": _IMAGE_BODY},
)
async def add_image(productId: str, request: Request, _admin: Admin, service: Service, store: Media) -> ImageRead:
    kind = bodies.media_type(request)
    upload: Upload | None = None
    if kind == bodies.MULTIPART:
        upload, fields = await _uploaded(request, store)
        body = bodies.validate_body(
            ImageIn,
            {"url": _public_url(request, store.url_path(productId, upload.name)), **fields.model_dump(by_alias=True)},
        )
    elif kind == bodies.JSON:
        body = await bodies.json_body(request, ImageIn)
    else:
        raise UnsupportedMediaType(f"Send {bodies.JSON} or {bodies.MULTIPART}, not {kind or 'no Content-Type'}")
    async with request.app.state.platform.db("catalog").uow() as uow:
        image, product = await service.add_image(uow, product_id=productId, image=body)
        if upload is not None:
            # Only once the image is accepted, and before the commit: a failed write adds nothing.
            await store.save(productId, upload)
        await uow.commit()
    await service.publish_to_cache(productId, product)
    return image


async def _uploaded(request: Request, store: MediaStore) -> tuple[Upload, ImageUpload]:
    """The uploaded file, checked, and the form's other fields. Only an admin gets here, so
    only an admin may send a body as large as an image."""
    web.allow_body_size(request, store.max_image_bytes + FORM_OVERHEAD)
    form = await bodies.form_body(request, max_files=1, max_fields=10, max_part_size=4096)
    try:
        file = form.get("file")
        if file is None:
            raise bodies.field_error("file", "missing", "Field required")
        if not isinstance(file, UploadFile):
            raise bodies.field_error("file", "file_type", "Must be a file")
        fields = bodies.validate_body(ImageUpload, {k: v for k, v in form.multi_items() if k != "file"})
        data = await file.read(store.max_image_bytes + 1)
    finally:
        await form.close()
    return await store.check(data), fields


def _public_url(request: Request, path: str) -> str:
    url = absolute_url(request, path, base=request.app.state.platform.settings.public_base_url)
    assert url is not None
    return url


@media.get(
    "/products/{productId}/{name}",
    summary="An uploaded product image",
    description="Names are content hashes, so a file never changes: it may be cached for a year.",
    response_class=Response,
    responses={
        200: {
            "description": "The image",
            "content": {content_type: {} for content_type in CONTENT_TYPES.values()},
        },
        **error_responses(404),
    },
)
async def product_image(
    store: Media,
    productId: Annotated[str, Path(description="The product's id.")],
    name: Annotated[str, Path(description="`<sha256>.<ext>`, as in the image's URL.")],
) -> Response:
    found = await store.find(productId, name)
    if found is None:
        raise ImageFileNotFound()
    return FileResponse(
        found.path,
        media_type=found.content_type,
        stat_result=found.stat,
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )
