"""Use cases of carts: show, set a line, remove a line, merge a guest's cart on sign-in.

Prices, names and stock come from the catalog and inventory each time (through their
clients), so a cart always shows today's price; the store keeps only lines and quantities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tienda.carts.domain import LineStatus, Priced, cart_total, line_status, line_total, merge_cap
from tienda.carts.errors import (
    CartItemNotFound,
    CartTokenExpired,
    CartTokenInvalid,
    CurrencyMismatch,
    NotEnoughStock,
    ProductUnavailable,
    VariantNotFound,
    VariantRequired,
)
from tienda.carts.schemas import CartLineRead, CartRead
from tienda.carts.store import CartStore, LineKey, MergeCap, Owner, StoredCart
from tienda.catalog.client import CatalogClient, ProductInfo
from tienda.inventory.client import InventoryClient, StockKey
from tienda.platform.auth import TokenService
from tienda.platform.clock import Clock
from tienda.platform.errors import BadRequest, ErrorDetail
from tienda.platform.ids import new_public_id

CART_TOKEN = "cart"
"""The kind of signed token a guest holds (`X-Cart-Token`): it names the guest's cart id."""


@dataclass
class CartService:
    store: CartStore
    catalog: CatalogClient
    inventory: InventoryClient
    tokens: TokenService
    clock: Clock
    currency: str
    max_quantity: int = 99
    max_lines: int = 100
    guest_ttl: timedelta = timedelta(days=30)

    # -- guests ---------------------------------------------------------------------------

    def guest(self, token: str) -> Owner:
        """The guest cart a token names; 401 when we did not issue it or it has expired."""
        try:
            cart_id = self.tokens.read(CART_TOKEN, token)
        except ValueError as exc:
            raise CartTokenInvalid() from exc
        if cart_id is None:
            raise CartTokenExpired()
        return Owner(guest_cart_id=cart_id)

    def new_guest(self) -> Owner:
        return Owner(guest_cart_id=new_public_id("c"))

    def guest_token(self, owner: Owner) -> str:
        """A fresh token for the guest's cart, good for as long as the cart is now kept."""
        assert owner.guest_cart_id is not None
        token, _ = self.tokens.sign(CART_TOKEN, owner.guest_cart_id, ttl_seconds=int(self.guest_ttl.total_seconds()))
        return token

    # -- use cases ------------------------------------------------------------------------

    async def view(self, owner: Owner | None) -> CartRead:
        stored = await self.store.load(owner, now=self.clock.now()) if owner else None
        products, stock = await self._lookup(_product_ids(stored))
        return self._read(owner, stored, products, stock)

    async def set_item(self, owner: Owner, *, product_id: str, variant_id: str | None, quantity: int) -> CartRead:
        """Set a line's quantity (not add to it: a retry changes nothing); 0 removes the line."""
        if quantity > self.max_quantity:
            raise BadRequest(
                "Validation failed",
                code="VALIDATION_FAILED",
                details=[ErrorDetail(field="body.quantity", message=f"at most {self.max_quantity} per line")],
            )
        now = self.clock.now()
        # Only the lines' keys before the write (the products to price the answer with); the
        # write answers the cart as it leaves it.
        keys = await self.store.line_keys(owner, now=now)
        key = LineKey(product_id, variant_id)
        if quantity == 0 and key not in keys:
            # Nothing to remove: nothing is written (no empty cart made, nothing touched).
            return await self.view(owner)
        if quantity > 0:
            products, stock = await self._lookup([k.product_id for k in keys] + [product_id])
            self._check_can_buy(products.get(product_id), key, quantity, stock)
        stored = await self.store.set_quantity(
            owner,
            key,
            quantity,
            now=now,
            new_cart_id=new_public_id("c"),
            new_item_id=new_public_id("ci"),
            max_lines=self.max_lines,
            expires_at=now + self.guest_ttl if owner.guest_cart_id else None,
        )
        if quantity == 0:
            products, stock = await self._lookup(_product_ids(stored))
        return self._read(owner, stored, products, stock)

    async def remove_item(self, owner: Owner | None, *, item_id: str) -> None:
        if owner is None or not await self.store.remove(owner, item_id, now=self.clock.now()):
            raise CartItemNotFound()

    async def merge(self, user: Owner, *, cart_token: str) -> CartRead:
        """Fold the guest's cart into the user's: quantities add up, capped by what is in
        stock; the guest cart is gone after. Merging again (or an empty guest cart) changes nothing."""
        guest = self.guest(cart_token)
        now = self.clock.now()
        theirs = await self.store.load(guest, now=now)
        caps: list[MergeCap] = []
        if theirs is not None:
            stock = await self.inventory.available([line.key.product_id for line in theirs.lines])
            caps = [
                MergeCap(
                    line.key,
                    merge_cap(available=stock.get(_stock_key(line.key), 0), max_quantity=self.max_quantity),
                )
                for line in theirs.lines
            ]
        stored = await self.store.merge(
            guest,
            user,
            caps,
            now=now,
            new_cart_id=new_public_id("c"),
            default_cap=self.max_quantity,
            max_lines=self.max_lines,
        )
        products, stock = await self._lookup(_product_ids(stored))
        return self._read(user, stored, products, stock)

    async def take_out(self, owner: Owner, lines: list[tuple[str, str | None, int]]) -> None:
        """Less of these (product, variant) lines by these quantities (an order placed from the
        cart now holds them), in one atomic write; a line down to nothing goes."""
        taken = [(LineKey(product_id, variant_id), quantity) for product_id, variant_id, quantity in lines]
        await self.store.take_out(owner, taken, now=self.clock.now())

    # -- internals ------------------------------------------------------------------------

    async def _lookup(self, product_ids: list[str]) -> tuple[dict[str, ProductInfo], dict[StockKey, int]]:
        """These products as they are now, and their stock."""
        if not product_ids:
            return {}, {}
        ids = list(dict.fromkeys(product_ids))
        return await self.catalog.products(ids), await self.inventory.available(ids)

    def _check_can_buy(
        self, product: ProductInfo | None, key: LineKey, quantity: int, stock: dict[StockKey, int]
    ) -> None:
        if product is None or not product.published:
            raise ProductUnavailable()
        if product.variants and key.variant_id is None:
            raise VariantRequired()
        if key.variant_id is not None and key.variant_id not in product.variants:
            raise VariantNotFound()
        if product.currency != self.currency:
            raise CurrencyMismatch()
        available = stock.get(_stock_key(key), 0)
        if quantity > available:
            raise NotEnoughStock(
                f"Only {available} in stock" if available else "Out of stock",
                details=[ErrorDetail(field="body.quantity", message=f"asked {quantity}, available {available}")],
            )

    def _read(
        self,
        owner: Owner | None,
        stored: StoredCart | None,
        products: dict[str, ProductInfo],
        stock: dict[StockKey, int],
    ) -> CartRead:
        lines: list[CartLineRead] = []
        for line in stored.lines if stored else []:
            product = products.get(line.key.product_id)
            variant = product.variants.get(line.key.variant_id) if product and line.key.variant_id else None
            exists = product is not None and product.has_line(line.key.variant_id)
            unit_price = (variant.price if variant else product.price) if product else None
            available = stock.get(_stock_key(line.key), 0)
            status = line_status(
                exists=exists,
                published=product is not None and product.published,
                same_currency=product is not None and product.currency == self.currency,
                available=available,
                quantity=line.quantity,
            )
            lines.append(
                CartLineRead.trusted(
                    item_id=line.item_id,
                    product_id=line.key.product_id,
                    variant_id=line.key.variant_id,
                    sku=(variant.sku if variant else product.sku) if product else None,
                    name=product.name if product else None,
                    attributes=variant.attributes if variant else {},
                    image=product.image if product else None,
                    quantity=line.quantity,
                    unit_price=unit_price,
                    line_total=line_total(unit_price, line.quantity),
                    available_quantity=available,
                    available=status is LineStatus.AVAILABLE,
                    status=status,
                    added_at=line.added_at,
                )
            )
        return CartRead.trusted(
            cart_id=stored.cart_id if stored else (owner.guest_cart_id if owner else None),
            user_id=owner.user_id if owner else None,
            items=lines,
            item_count=sum(line.quantity for line in lines),
            total_amount=cart_total([Priced(line.status, line.line_total) for line in lines]),
            currency=self.currency,
            has_unavailable_items=any(not line.available for line in lines),
        )

    async def purge_expired(self, *, now: datetime | None = None) -> int:
        return await self.store.purge_expired(now=now or self.clock.now())


def _product_ids(stored: StoredCart | None) -> list[str]:
    return [line.key.product_id for line in stored.lines] if stored else []


def _stock_key(key: LineKey) -> StockKey:
    return key.product_id, key.variant_id
