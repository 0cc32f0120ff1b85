"""The order lifecycle and pricing rules, as pure functions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tienda.orders.domain import (
    MOVES,
    CouponKind,
    CouponTerms,
    IllegalMove,
    LineIn,
    OrderStatus,
    ShippingTerms,
    coupon_discount,
    move,
    price,
    share,
    tax_rate,
)

S = OrderStatus
D = Decimal
FLAT = ShippingTerms(fee=D("49.00"), free_from=D("999.00"))
GST = D("0.18")


class TestLifecycle:
    LEGAL = {
        (S.CREATED, S.CONFIRMED),
        (S.CREATED, S.FAILED),
        (S.CREATED, S.CANCELLED),
        (S.CONFIRMED, S.PACKED),
        (S.CONFIRMED, S.CANCELLED),
        (S.CONFIRMED, S.REFUNDED),
        (S.PACKED, S.SHIPPED),
        (S.PACKED, S.CANCELLED),
        (S.PACKED, S.REFUNDED),
        (S.SHIPPED, S.DELIVERED),
        (S.SHIPPED, S.REFUNDED),
        (S.DELIVERED, S.REFUNDED),
    }

    def test_the_moves_are_exactly_those_of_the_design(self) -> None:
        assert {(a, b) for a, targets in MOVES.items() for b in targets} == self.LEGAL

    @pytest.mark.parametrize("current", list(S))
    @pytest.mark.parametrize("wanted", list(S))
    def test_every_other_move_is_refused(self, current: OrderStatus, wanted: OrderStatus) -> None:
        if (current, wanted) in self.LEGAL:
            assert move(current, wanted) is wanted
        else:
            with pytest.raises(IllegalMove, match=f"{current.value} cannot become {wanted.value}"):
                move(current, wanted)


class TestCouponDiscount:
    def test_percent_rounds_half_up(self) -> None:
        assert coupon_discount(CouponTerms(CouponKind.PERCENT, D("10")), D("333.35")) == D("33.34")

    def test_fixed_never_exceeds_the_subtotal(self) -> None:
        assert coupon_discount(CouponTerms(CouponKind.FIXED, D("500")), D("120.00")) == D("120.00")

    def test_capped_by_the_maximum_discount(self) -> None:
        terms = CouponTerms(CouponKind.PERCENT, D("50"), max_discount=D("200.00"))
        assert coupon_discount(terms, D("1000.00")) == D("200.00")

    def test_nothing_below_the_minimum_order(self) -> None:
        terms = CouponTerms(CouponKind.FIXED, D("100"), min_order=D("500.00"))
        assert coupon_discount(terms, D("499.99")) == D("0.00")
        assert coupon_discount(terms, D("500.00")) == D("100.00")


class TestShare:
    def test_shares_add_up_exactly(self) -> None:
        assert share(D("10.00"), [D("1.00"), D("1.00"), D("1.00")]) == [D("3.33"), D("3.33"), D("3.34")]

    def test_in_proportion(self) -> None:
        assert share(D("30.00"), [D("100.00"), D("200.00")]) == [D("10.00"), D("20.00")]

    def test_nothing_to_share_among_nothing(self) -> None:
        assert share(D("5.00"), []) == []


class TestPrice:
    def test_no_coupon_tax_and_shipping_below_the_threshold(self) -> None:
        pricing = price([LineIn(D("499.00"), 1, GST)], coupon=None, shipping=FLAT)
        assert (pricing.subtotal, pricing.discount, pricing.tax, pricing.shipping, pricing.total) == (
            D("499.00"),
            D("0.00"),
            D("89.82"),
            D("49.00"),
            D("637.82"),
        )

    def test_tax_on_the_discounted_lines_at_each_lines_rate_and_free_shipping(self) -> None:
        lines = [LineIn(D("1000.00"), 1, GST), LineIn(D("250.00"), 2, D("0.05"))]
        pricing = price(lines, coupon=CouponTerms(CouponKind.PERCENT, D("10")), shipping=FLAT)
        assert pricing.subtotal == D("1500.00")
        assert pricing.discount == D("150.00")
        assert [(p.total, p.discount, p.tax) for p in pricing.lines] == [
            (D("1000.00"), D("100.00"), D("162.00")),
            (D("500.00"), D("50.00"), D("22.50")),
        ]
        assert (pricing.tax, pricing.shipping, pricing.total) == (D("184.50"), D("0.00"), D("1534.50"))

    def test_the_threshold_applies_after_the_discount(self) -> None:
        pricing = price([LineIn(D("1000.00"), 1, GST)], coupon=CouponTerms(CouponKind.FIXED, D("2.00")), shipping=FLAT)
        assert pricing.shipping == D("49.00")

    def test_every_line_is_rounded_half_up(self) -> None:
        pricing = price([LineIn(D("0.05"), 1, D("0.10"))], coupon=None, shipping=ShippingTerms(D("0"), None))
        assert pricing.tax == D("0.01")  # 0.005 rounds up


class TestTaxRate:
    def test_the_nearest_override_wins(self) -> None:
        overrides = {"clothing": D("0.05"), "t-shirts": D("0.12")}
        assert tax_rate(["t-shirts", "clothing"], default=GST, overrides=overrides) == D("0.12")
        assert tax_rate(["jeans", "clothing"], default=GST, overrides=overrides) == D("0.05")
        assert tax_rate(["phones", "electronics"], default=GST, overrides=overrides) == GST
