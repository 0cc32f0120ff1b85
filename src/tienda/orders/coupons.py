"""Use cases of coupons: admin CRUD at /api/v1/coupons, and their use at checkout (checked,
redeemed with the order, given back when the order fails or is cancelled unpaid)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.orders import repository
from tienda.orders.domain import CouponKind, CouponTerms, check_coupon_terms
from tienda.orders.errors import CouponCodeTaken, CouponInUse, CouponNotApplicable, CouponNotFound
from tienda.orders.models import Coupon, CouponRedemption
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

    # -- at checkout ----------------------------------------------------------------------

    async def terms_for(self, uow: UnitOfWork, *, code: str, user_id: str, now: datetime) -> CouponTerms:
        """The terms of the coupon if this buyer may use it now. Locks the coupon's row until the
        order commits, so its limits hold however many buyers use it at once (the counts below
        are read after the lock is held)."""
        coupon = await repository.coupon_for_update(uow.session, code)
        if coupon is None or not coupon.is_active:
            raise CouponNotApplicable("No such coupon", code="COUPON_NOT_FOUND")
        if (coupon.starts_at and now < coupon.starts_at) or (coupon.ends_at and now >= coupon.ends_at):
            raise CouponNotApplicable("The coupon is not valid today")
        if coupon.usage_limit is not None and coupon.used_count >= coupon.usage_limit:
            raise CouponNotApplicable("The coupon has been used up")
        if coupon.per_user_limit is not None and (
            await repository.redemptions_by(uow.session, coupon.id, user_id) >= coupon.per_user_limit
        ):
            raise CouponNotApplicable("You have used this coupon as often as it allows")
        if coupon.first_order_only and await repository.orders_of_user_count(
            uow.session, user_id, excluding=("FAILED", "CANCELLED")
        ):
            raise CouponNotApplicable("The coupon is for a first order only")
        return CouponTerms(
            kind=CouponKind(coupon.discount_type),
            value=coupon.value,
            min_order=coupon.min_order_amount,
            max_discount=coupon.max_discount_amount,
        )

    @staticmethod
    def check_applies(terms: CouponTerms, subtotal: Decimal) -> None:
        if subtotal < terms.min_order:
            raise CouponNotApplicable(f"The coupon needs an order of at least {terms.min_order}")

    async def redeem(self, uow: UnitOfWork, *, code: str, user_id: str, order_id: str) -> None:
        """Count one use by this order (the coupon's row is locked by `terms_for`)."""
        coupon = await repository.coupon_for_update(uow.session, code)
        assert coupon is not None
        coupon.used_count += 1
        uow.session.add(
            CouponRedemption(coupon_id=coupon.id, user_id=user_id, order_id=order_id, created_at=self.clock.now())
        )

    async def release(self, uow: UnitOfWork, *, order_id: str) -> None:
        """The order failed or was cancelled before it was paid: the use goes back. Idempotent."""
        redemption = await repository.redemption_of(uow.session, order_id)
        if redemption is None:
            return
        coupon = await repository.coupon_by_pk_for_update(uow.session, redemption.coupon_id)
        if coupon is not None and coupon.used_count > 0:
            coupon.used_count -= 1
        await uow.session.delete(redemption)
