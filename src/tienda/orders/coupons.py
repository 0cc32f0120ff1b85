"""Use cases of coupons (admin CRUD at /api/v1/coupons). Redeeming one at checkout comes
with the order service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.orders import repository
from tienda.orders.domain import CouponKind, check_coupon_terms
from tienda.orders.errors import CouponCodeTaken, CouponInUse, CouponNotFound
from tienda.orders.models import Coupon
from tienda.orders.schemas import CouponCreate, CouponRead, CouponUpdate
from tienda.platform.clock import Clock
from tienda.platform.db import UnitOfWork
from tienda.platform.errors import BadRequest, ErrorDetail
from tienda.platform.ids import new_public_id
from tienda.platform.pagination import Page


@dataclass
class CouponService:
    clock: Clock

    async def create(self, uow: UnitOfWork, *, data: CouponCreate) -> CouponRead:
        now = self.clock.now()
        coupon = Coupon(
            coupon_id=new_public_id("cpn"), **data.model_dump(), used_count=0, created_at=now, updated_at=now
        )
        uow.session.add(coupon)
        try:
            await uow.session.flush()
        except IntegrityError as exc:  # the code, taken (first or concurrently)
            raise CouponCodeTaken() from exc
        return CouponRead.model_validate(coupon)

    async def get(self, uow: UnitOfWork, *, coupon_id: str) -> CouponRead:
        return CouponRead.model_validate(await self._coupon(uow, coupon_id))

    async def page(self, uow: UnitOfWork, *, page: int, size: int, active: bool | None) -> Page[CouponRead]:
        rows, total = await repository.coupons(uow.session, offset=(page - 1) * size, limit=size, active=active)
        return Page(items=[CouponRead.model_validate(c) for c in rows], page=page, size=size, total=total)

    async def update(self, uow: UnitOfWork, *, coupon_id: str, changes: CouponUpdate) -> CouponRead:
        """Only the fields sent change; the terms must still make sense together afterwards."""
        coupon = await self._coupon(uow, coupon_id, for_update=True)
        fields: dict[str, Any] = changes.model_dump(exclude_unset=True)
        after = {k: fields.get(k, getattr(coupon, k)) for k in ("discount_type", "value", "starts_at", "ends_at")}
        try:
            check_coupon_terms(
                CouponKind(after["discount_type"]), **{k: after[k] for k in ("value", "starts_at", "ends_at")}
            )
        except ValueError as exc:
            raise BadRequest(
                "Validation failed", code="VALIDATION_FAILED", details=[ErrorDetail(field="body", message=str(exc))]
            ) from exc
        for name, value in fields.items():
            setattr(coupon, name, value)
        coupon.updated_at = self.clock.now()
        await uow.session.flush()
        return CouponRead.model_validate(coupon)

    async def delete(self, uow: UnitOfWork, *, coupon_id: str) -> None:
        """Only a coupon never used: one that was stays, for the orders that name it."""
        coupon = await self._coupon(uow, coupon_id, for_update=True)
        if coupon.used_count:
            raise CouponInUse()
        await uow.session.delete(coupon)
        await uow.session.flush()

    @staticmethod
    async def _coupon(uow: UnitOfWork, coupon_id: str, *, for_update: bool = False) -> Coupon:
        coupon = await repository.coupon(uow.session, coupon_id, for_update=for_update)
        if coupon is None:
            raise CouponNotFound()
        return coupon
