"""Pure rules of search: what of a product is indexed, how the seed's `filters=` parameter
reads, and how a category filter widens to its sub-categories. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tienda.platform.errors import BadRequest, ErrorDetail

PRICE_BOUNDS: tuple[Decimal, ...] = (Decimal(0), Decimal(500), Decimal(1000), Decimal(2500), Decimal(5000))
"""Price facet ranges: [0, 500), [500, 1000), [1000, 2500), [2500, 5000), [5000, ∞) — as the listing's."""

MAX_ATTRIBUTE_FILTERS = 10


@dataclass(frozen=True)
class IndexedProduct:
    """What the index keeps of a product the public may see."""

    product_id: str
    version: int
    name: str
    description: str
    brand: str | None
    category_id: str | None
    category_text: str
    attributes: tuple[tuple[str, str], ...]
    price: Decimal
    created: int
    hit: bytes
    in_stock: bool = False


@dataclass(frozen=True)
class Change:
    """A product to index, or to hide (`product is None`), as of `version`."""

    product_id: str
    version: int
    product: IndexedProduct | None = None


@dataclass(frozen=True)
class SearchRequest:
    text: str = ""
    category_ids: frozenset[str] | None = None
    brands: frozenset[str] = frozenset()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    attributes: tuple[tuple[str, frozenset[str]], ...] = ()
    sort: str = "relevance"
    in_stock: bool = False
    """Only products with at least one unit available."""
    offset: int = 0
    limit: int = 20
    price_bounds: tuple[Decimal, ...] = PRICE_BOUNDS


@dataclass
class SearchResult:
    hits: list[bytes]
    total: int
    brands: list[tuple[str, int]] = field(default_factory=list)
    categories: list[tuple[str, int]] = field(default_factory=list)
    price_ranges: list[int] = field(default_factory=list)
    attributes: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class CategoryLike(Protocol):
    @property
    def category_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def slug(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...


def version_of(moment: datetime) -> int:
    """A change's version: its time in microseconds (later changes win)."""
    return int(moment.timestamp() * 1_000_000)


def dto_version(product: dict[str, Any]) -> int:
    """The version of a product's DTO: its last change."""
    return version_of(datetime.fromisoformat(product["updatedAt"]))


def is_public(product: dict[str, Any]) -> bool:
    return bool(product.get("isActive")) and product.get("deletedAt") is None


def in_stock(product: dict[str, Any]) -> bool:
    """Whether a unit of the product can be bought: its `stock` (its variants' together, or its
    own without variants) as the catalog last heard from inventory."""
    return int(product.get("stock") or 0) > 0


def category_path(categories: Sequence[CategoryLike], category_id: str | None) -> list[CategoryLike]:
    """The category and its ancestors, nearest first."""
    by_id = {c.category_id: c for c in categories}
    path: list[CategoryLike] = []
    current = by_id.get(category_id) if category_id else None
    while current is not None and current not in path:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return path


def subtree(categories: Sequence[CategoryLike], wanted: str) -> frozenset[str] | None:
    """The ids of the category named by id or slug and of every category under it; None if
    there is no such category."""
    root = next((c.category_id for c in categories if wanted in (c.category_id, c.slug)), None)
    if root is None:
        return None
    children: dict[str, list[str]] = {}
    for c in categories:
        if c.parent_id:
            children.setdefault(c.parent_id, []).append(c.category_id)
    found, frontier = {root}, [root]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, []) if child not in found]
        found.update(frontier)
    return frozenset(found)


def indexed_product(
    product: dict[str, Any], *, version: int, categories: Sequence[CategoryLike], hit: bytes
) -> IndexedProduct:
    """The indexed form of a product's DTO (the `product` of a catalog event)."""
    attributes = {
        (str(k).strip().lower(), str(v).strip().lower())
        for variant in product.get("variants") or []
        for k, v in (variant.get("attributes") or {}).items()
        if str(k).strip() and str(v).strip()
    }
    path = category_path(categories, product.get("categoryId"))
    return IndexedProduct(
        product_id=product["productId"],
        version=version,
        name=product["name"],
        description=product.get("description") or "",
        brand=product.get("brand"),
        category_id=product.get("categoryId"),
        category_text=" ".join(c.name for c in path),
        attributes=tuple(sorted(attributes)),
        price=Decimal(str(product["price"])),
        created=version_of(datetime.fromisoformat(product["createdAt"])),
        hit=hit,
        in_stock=in_stock(product),
    )


@dataclass
class Filters:
    """Filters from SEED.md's `filters=` parameter."""

    category: str | None = None
    brands: list[str] = field(default_factory=list)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    attributes: dict[str, set[str]] = field(default_factory=dict)


def parse_filters(raw: str) -> Filters:
    """`filters=brand:Stride,color:black,minPrice:500,maxPrice:2000,category:footwear`: comma-
    separated `key:value` pairs; `brand`, `category`, `minPrice`, `maxPrice` are what their
    own parameters are, any other key is an attribute. A repeated key means either value."""
    parsed = Filters()
    bad: list[ErrorDetail] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        key, colon, value = part.partition(":")
        key, value = key.strip(), value.strip()
        if not colon or not key or not value:
            bad.append(ErrorDetail(field="query.filters", message=f"expected key:value, got {part[:50]!r}"))
        elif key in ("minPrice", "maxPrice"):
            try:
                amount = Decimal(value)
            except InvalidOperation:
                amount = Decimal(-1)
            if not amount.is_finite() or amount < 0:
                bad.append(ErrorDetail(field="query.filters", message=f"{key} must be a number ≥ 0"))
            elif key == "minPrice":
                parsed.min_price = amount
            else:
                parsed.max_price = amount
        elif key == "brand":
            parsed.brands.append(value)
        elif key == "category":
            parsed.category = value
        else:
            parsed.attributes.setdefault(key.lower(), set()).add(value.lower())
    if bad:
        raise BadRequest("Validation failed", code="VALIDATION_FAILED", details=bad)
    return parsed


def attribute_filters(params: Sequence[tuple[str, str]]) -> dict[str, set[str]]:
    """`attr.color=red&attr.color=blue&attr.size=m` → {color: {red, blue}, size: {m}}."""
    found: dict[str, set[str]] = {}
    for name, value in params:
        if not name.startswith("attr."):
            continue
        key = name.removeprefix("attr.").strip().lower()
        if not key or not value.strip():
            raise BadRequest(
                "Validation failed",
                code="VALIDATION_FAILED",
                details=[ErrorDetail(field=f"query.{name}", message="an attribute filter needs a name and a value")],
            )
        found.setdefault(key, set()).add(value.strip().lower())
    if len(found) > MAX_ATTRIBUTE_FILTERS:
        raise BadRequest(
            "Validation failed",
            code="VALIDATION_FAILED",
            details=[ErrorDetail(field="query.attr", message=f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters")],
        )
    return found
