"""Placing an order (POST /api/v1/orders, COD), on every SQL backend: the order answered and
stored, its pricing, the stock sold, the cart emptied, the events; and every way it is refused,
each leaving everything as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.carts.support import line, product_for_sale, simple_product
from tests.conftest import Shop
from tests.orders.support import (
    ADDRESS_FIELDS,
    HOME,
    ITEM_FIELDS,
    OFFICE,
    ORDER_FIELDS,
    ORDERS,
    Buyer,
    add_address,
    assert_error,
    buyer,
    cart_lines,
    coupon_state,
    create_coupon,
    fill,
    items_stored,
    order_id_pattern,
    order_stored,
    orders_stored,
    place,
    placed,
    rebuilt,
    stock,
    world,
)
from tests.platform.test_outbox import _statements_run

D = Decimal


def address_of(fields: dict[str, Any], address_id: str) -> dict[str, Any]:
    """An address as an order shows it."""
    return (
        dict.fromkeys(ADDRESS_FIELDS)
        | {k: v for k, v in fields.items() if k != "isDefault"}
        | {"addressId": address_id}
    )


async def shirt_for_sale(shop: Shop, admin: dict[str, str], *, price: float = 499.0, stock: int = 5) -> dict[str, Any]:
    return await product_for_sale(
        shop,
        admin,
        name="Men's T-Shirt",
        sku="TSHIRT",
        price=price,
        variants=[
            {"sku": "TSHIRT-RED-M", "attributes": {"color": "red", "size": "M"}},
            {"sku": "TSHIRT-BLUE-L", "attributes": {"color": "blue", "size": "L"}},
        ],
        stock=stock,
    )


class TestPlaceCod:
    async def test_answers_201_with_the_whole_order_confirmed(self, shop: Shop) -> None:
        # given a buyer with two red shirts (499 each) in the cart
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 2))

        # when she places a COD order
        response = await place(shop, asha)

        # then it is confirmed, priced and shows everything it holds
        assert response.status_code == 201, response.text
        order = response.json()
        assert set(order) == ORDER_FIELDS
        assert order_id_pattern(shop).match(order["orderId"])
        now = shop.clock.now()
        assert order == {
            "orderId": order["orderId"],
            "userId": asha.user_id,
            "status": "CONFIRMED",
            "paymentStatus": "COD_PENDING",
            "paymentMethod": "COD",
            "paymentId": None,
            "paymentUrl": None,
            "currency": "INR",
            "items": [
                {
                    "productId": shirt["productId"],
                    "variantId": shirt["variants"][0]["variantId"],
                    "sku": "TSHIRT-RED-M",
                    "name": "Men's T-Shirt",
                    "attributes": {"color": "red", "size": "M"},
                    "quantity": 2,
                    "unitPrice": 499.0,
                    "totalPrice": 998.0,
                    "discountAmount": 0.0,
                    "taxRate": 0.18,
                    "taxAmount": 179.64,
                }
            ],
            "subtotalAmount": 998.0,
            "discountAmount": 0.0,
            "taxAmount": 179.64,
            "shippingAmount": 49.0,
            "totalAmount": 1226.64,
            "refundedAmount": 0.0,
            "couponCode": None,
            "shippingAddress": address_of(HOME, asha.address_id),
            "billingAddress": address_of(HOME, asha.address_id),
            "trackingNumber": None,
            "failureReason": None,
            "expiresAt": order["expiresAt"],
            "createdAt": order["createdAt"],
            "updatedAt": order["updatedAt"],
        }
        assert set(order["items"][0]) == ITEM_FIELDS
        assert order["createdAt"] == order["updatedAt"] == now.isoformat().replace("+00:00", "Z")

    async def test_stores_the_order_with_its_lines_and_saga_done(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 2))

        order = await placed(shop, asha)

        stored = await order_stored(shop, order["orderId"])
        assert {k: stored[k] for k in ("user_id", "status", "payment_status", "payment_method", "saga_step")} == {
            "user_id": asha.user_id,
            "status": "CONFIRMED",
            "payment_status": "COD_PENDING",
            "payment_method": "COD",
            "saga_step": "DONE",
        }
        assert (
            stored["subtotal_amount"],
            stored["discount_amount"],
            stored["tax_amount"],
            stored["shipping_amount"],
            stored["total_amount"],
        ) == (D("998.00"), D("0.00"), D("179.64"), D("49.00"), D("1226.64"))
        assert (stored["shipping_address_id"], stored["billing_address_id"]) == (asha.address_id, asha.address_id)
        assert stored["created_at"] == shop.clock.now()
        assert stored["expires_at"] == shop.clock.now() + timedelta(seconds=shop.settings.reservation_ttl_seconds)
        items = await items_stored(shop)
        assert [
            (i["order_id"], i["product_id"], i["sku"], i["quantity"], i["unit_price"], i["tax_rate"], i["tax_amount"])
            for i in items
        ] == [
            (stored["id"], shirt["productId"], "TSHIRT-RED-M", 2, D("499.00"), D("0.1800"), D("179.64")),
        ]

    async def test_order_numbers_run_0001_0002_on_the_day_of_the_clock(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        day = f"{shop.clock.now():%Y%m%d}"

        await fill(shop, asha, line(shirt, 1))
        first = await placed(shop, asha)
        await fill(shop, ravi, line(shirt, 1, variant=1))
        second = await placed(shop, ravi)

        assert (first["orderId"], second["orderId"]) == (f"ord_{day}_0001", f"ord_{day}_0002")
        assert [o["order_id"] for o in await orders_stored(shop)] == [first["orderId"], second["orderId"]]

    async def test_a_new_day_starts_at_0001_again(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        await placed(shop, asha)

        shop.clock.advance(days=1)
        ravi = await buyer(shop, "ravi@example.com")  # a token of the new day
        await fill(shop, ravi, line(shirt, 1))
        next_day = await placed(shop, ravi)

        assert next_day["orderId"] == f"ord_{shop.clock.now():%Y%m%d}_0001"

    async def test_items_snapshot_name_sku_attributes_and_price(self, shop: Shop) -> None:
        # given an order of a blue shirt and two mugs
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        mug = await simple_product(shop, admin, name="Mug", sku="MUG-1", price=250.5, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1, variant=1), line(mug, 2))
        order = await placed(shop, asha)

        # when the catalog renames and reprices them
        for product in (shirt, mug):
            response = await shop.client.put(
                f"/api/v1/products/{product['productId']}", json={"name": "Renamed", "price": 1}, headers=admin
            )
            assert response.status_code == 200, response.text

        # then the order still shows what was bought, as it was
        again = await shop.client.get(f"{ORDERS}/{order['orderId']}", headers=asha.auth)
        assert again.status_code == 200
        assert [
            (i["productId"], i["variantId"], i["sku"], i["name"], i["attributes"], i["quantity"], i["unitPrice"])
            for i in again.json()["items"]
        ] == [
            (
                shirt["productId"],
                shirt["variants"][1]["variantId"],
                "TSHIRT-BLUE-L",
                "Men's T-Shirt",
                {"color": "blue", "size": "L"},
                1,
                499.0,
            ),
            (mug["productId"], None, "MUG-1", "Mug", {}, 2, 250.5),
        ]
        assert again.json() == order

    async def test_addresses_are_copied_and_outlive_changes_to_the_address(self, shop: Shop) -> None:
        # given an order shipped home and billed to the office
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        office = await add_address(shop, asha.user_id, asha.auth, OFFICE)
        await fill(shop, asha, line(shirt, 1))
        order = await placed(shop, asha, billingAddressId=office)
        assert order["shippingAddress"] == address_of(HOME, asha.address_id)
        assert order["billingAddress"] == address_of(OFFICE, office)

        # when the home address is edited and the office one deleted
        base = f"/api/v1/users/{asha.user_id}/addresses"
        edited = await shop.client.put(f"{base}/{asha.address_id}", json={"line1": "99 Elsewhere"}, headers=asha.auth)
        assert edited.status_code == 200, edited.text
        assert (await shop.client.delete(f"{base}/{office}", headers=asha.auth)).status_code == 204

        # then the order keeps the addresses it was placed with
        again = await shop.client.get(f"{ORDERS}/{order['orderId']}", headers=asha.auth)
        assert again.json()["shippingAddress"] == address_of(HOME, asha.address_id)
        assert again.json()["billingAddress"] == address_of(OFFICE, office)
        stored = await order_stored(shop, order["orderId"])
        assert stored["shipping_address"]["line1"] == "12 MG Road"
        assert stored["billing_address"]["line1"] == "1 Residency Road"

    async def test_billing_the_shipping_address_twice_is_the_same(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))

        order = await placed(shop, asha, billingAddressId=asha.address_id, userId=asha.user_id)

        assert order["billingAddress"] == order["shippingAddress"] == address_of(HOME, asha.address_id)

    async def test_prices_are_read_again_from_the_catalog(self, shop: Shop) -> None:
        # given a mug added to the cart at 250.50
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, price=250.5, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 2))

        # when its price goes up before checkout
        response = await shop.client.put(f"/api/v1/products/{mug['productId']}", json={"price": 300}, headers=admin)
        assert response.status_code == 200, response.text
        order = await placed(shop, asha)

        # then the order charges today's price
        assert [(i["unitPrice"], i["totalPrice"]) for i in order["items"]] == [(300.0, 600.0)]
        assert (order["subtotalAmount"], order["taxAmount"], order["shippingAmount"], order["totalAmount"]) == (
            600.0,
            108.0,
            49.0,
            757.0,
        )

    async def test_the_price_of_the_variant_is_charged(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await product_for_sale(
            shop,
            admin,
            price=499,
            variants=[{"attributes": {"size": "M"}}, {"attributes": {"size": "XXL"}, "price": 549}],
            stock=5,
        )
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1, variant=1))

        order = await placed(shop, asha)

        assert [i["unitPrice"] for i in order["items"]] == [549.0]
        assert order["subtotalAmount"] == 549.0


class TestPricing:
    async def test_lines_share_a_fixed_discount_and_are_taxed_each(self, shop: Shop) -> None:
        # given 3 mugs at 250.50 and a shirt at 499 (1250.50), and a coupon of 300 off
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, price=250.5, stock=5)
        shirt = await shirt_for_sale(shop, admin)
        response = await shop.client.post(
            "/api/v1/coupons", json={"code": "FLAT300", "discountType": "FIXED", "value": 300}, headers=admin
        )
        assert response.status_code == 201, response.text
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 3), line(shirt, 1))

        order = await placed(shop, asha, couponCode="FLAT300")

        # then 300 is shared 180.29 / 119.71, each line taxed 18% on what is left,
        # and shipping is charged since 950.50 is below 999
        assert [(i["totalPrice"], i["discountAmount"], i["taxAmount"]) for i in order["items"]] == [
            (751.5, 180.29, 102.82),
            (499.0, 119.71, 68.27),
        ]
        assert (
            order["subtotalAmount"],
            order["discountAmount"],
            order["taxAmount"],
            order["shippingAmount"],
            order["totalAmount"],
        ) == (1250.5, 300.0, 171.09, 49.0, 1170.59)
        stored = await order_stored(shop, order["orderId"])
        assert (stored["discount_amount"], stored["total_amount"], stored["coupon_code"]) == (
            D("300.00"),
            D("1170.59"),
            "FLAT300",
        )

    @pytest.mark.parametrize(
        ("price", "shipping", "total"),
        [(998.99, 49.0, 1227.81), (999, 0.0, 1178.82), (1200, 0.0, 1416.0)],
    )
    async def test_shipping_is_free_from_999(self, shop: Shop, price: float, shipping: float, total: float) -> None:
        _, admin = await shop.admin()
        thing = await simple_product(shop, admin, price=price, stock=1)
        asha = await buyer(shop)
        await fill(shop, asha, line(thing, 1))

        order = await placed(shop, asha)

        assert (order["shippingAmount"], order["totalAmount"]) == (shipping, total)

    @pytest.mark.parametrize(
        ("price", "discount", "shipping", "total"),
        [(1100, 110.0, 49.0, 1217.2), (1110, 111.0, 0.0, 1178.82)],
    )
    async def test_shipping_looks_at_the_subtotal_after_discount(
        self, shop: Shop, price: float, discount: float, shipping: float, total: float
    ) -> None:
        # 1100 - 10% = 990 pays shipping; 1110 - 10% = 999 does not
        _, admin = await shop.admin()
        thing = await simple_product(shop, admin, price=price, stock=1)
        response = await shop.client.post(
            "/api/v1/coupons", json={"code": "TENOFF", "discountType": "PERCENT", "value": 10}, headers=admin
        )
        assert response.status_code == 201
        asha = await buyer(shop)
        await fill(shop, asha, line(thing, 1))

        order = await placed(shop, asha, couponCode="TENOFF")

        assert (order["discountAmount"], order["shippingAmount"], order["totalAmount"]) == (discount, shipping, total)


@pytest.fixture
async def taxed_shop(shop: Shop) -> AsyncIterator[Shop]:
    """The shop with books taxed at 5% (by the category's slug)."""
    async with rebuilt(shop, tax_rates={"books": Decimal("0.05")}) as taxed:
        yield taxed


class TestTaxOverrides:
    async def test_a_category_and_its_subcategories_take_their_rate(self, taxed_shop: Shop) -> None:
        # given Books (5%) with Fiction under it, and Kids under Fiction; a shirt in no category
        shop = taxed_shop
        _, admin = await shop.admin()
        ids = {}
        parent = None
        for name in ("Books", "Fiction", "Kids"):
            body = {"name": name} | ({"parentId": parent} if parent else {})
            response = await shop.client.post("/api/v1/categories", json=body, headers=admin)
            assert response.status_code == 201, response.text
            ids[name] = parent = response.json()["categoryId"]
        atlas = await simple_product(shop, admin, name="Atlas", price=300, categoryId=ids["Books"])
        novel = await simple_product(shop, admin, name="Novel", price=200, categoryId=ids["Fiction"])
        fable = await simple_product(shop, admin, name="Fable", price=99.9, categoryId=ids["Kids"])
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(atlas, 1), line(novel, 2), line(fable, 1), line(shirt, 1))

        order = await placed(shop, asha)

        # then the books pay 5%, the shirt the default 18%
        assert [(i["name"], i["taxRate"], i["taxAmount"]) for i in order["items"]] == [
            ("Atlas", 0.05, 15.0),
            ("Novel", 0.05, 20.0),
            ("Fable", 0.05, 5.0),
            ("Men's T-Shirt", 0.18, 89.82),
        ]
        assert (order["subtotalAmount"], order["taxAmount"], order["shippingAmount"], order["totalAmount"]) == (
            1298.9,
            129.82,
            0.0,
            1428.72,
        )

    async def test_without_per_category_rates_the_category_tree_is_not_read(self, shop: Shop) -> None:
        # given a shop with no per-category rates, a book in a category that was just written
        # (its cached list of categories starts a new generation: the next read goes to the table)
        _, admin = await shop.admin()
        response = await shop.client.post("/api/v1/categories", json={"name": "Books"}, headers=admin)
        assert response.status_code == 201, response.text
        atlas = await simple_product(shop, admin, name="Atlas", price=300, categoryId=response.json()["categoryId"])
        asha = await buyer(shop)
        await fill(shop, asha, line(atlas, 1))

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            order = await placed(shop, asha)
            run = await taken()

        # then the order is taxed at the default rate without a look at the categories
        assert [(i["name"], i["taxRate"]) for i in order["items"]] == [("Atlas", 0.18)]
        assert not [statement for statement in run if "categories" in statement], run


class TestCartLeavesAndStockIsSold:
    async def test_stock_is_sold_and_the_lines_leave_the_cart(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin, stock=5)
        mug = await simple_product(shop, admin, stock=3)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 2), line(mug, 3))

        await placed(shop, asha)

        assert await stock(shop, shirt) == (8, 0, 8)  # 5 + 5 in two variants, 2 sold
        variants = (await shop.client.get(f"/api/v1/inventory/{shirt['productId']}")).json()["variants"]
        assert {v["variantId"]: (v["stockCount"], v["reserved"]) for v in variants} == {
            shirt["variants"][0]["variantId"]: (3, 0),
            shirt["variants"][1]["variantId"]: (5, 0),
        }
        assert await stock(shop, mug) == (0, 0, 0)
        assert await cart_lines(shop, asha) == []

    async def test_order_created_and_order_confirmed_are_published(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 2))

        order = await placed(shop, asha)

        item = {
            "productId": shirt["productId"],
            "variantId": shirt["variants"][0]["variantId"],
            "sku": "TSHIRT-RED-M",
            "name": "Men's T-Shirt",
            "quantity": 2,
            "unitPrice": "499.00",
        }
        common = {
            "orderId": order["orderId"],
            "userId": asha.user_id,
            "paymentMethod": "COD",
            "currency": "INR",
            "totalAmount": "1226.64",
            "trackingNumber": None,
            "items": [item],
        }
        assert await shop.events("orders", "order.created") == [
            common | {"status": "CREATED", "paymentStatus": "PENDING"}
        ]
        assert await shop.events("orders", "order.confirmed") == [
            common | {"status": "CONFIRMED", "paymentStatus": "COD_PENDING"}
        ]
        assert await shop.events("orders", "order.failed") == []

    async def test_the_alias_path_places_an_order_too(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))

        response = await shop.client.post("/api/orders", json=asha.body(), headers=asha.auth)

        assert response.status_code == 201, response.text
        assert len(await orders_stored(shop)) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
class TestPlacingInOneStatement:
    async def test_the_order_takes_its_number_in_the_statement_that_stores_it(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))

        async with _statements_run([shop.platform.db("orders")]) as taken:
            order = await placed(shop, asha)
            run = await taken()

        numbering = [s for s in run if "order_sequences" in s]
        assert len(numbering) == 1, numbering
        assert " ".join(numbering[0].split()).startswith("WITH n AS (INSERT INTO order_sequences")
        assert "INSERT INTO orders " in numbering[0]
        assert order["orderId"] == f"ord_{shop.clock.now():%Y%m%d}_0001"
        [created] = await shop.events("orders", "order.created")
        assert created["orderId"] == order["orderId"]

    async def test_a_repeat_refused_by_its_key_takes_no_number(self, shop: Shop) -> None:
        """The refused INSERT rolls the day's number back with it: the next order's follows."""
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin, stock=5)
        asha, ravi = await buyer(shop), await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(shirt, 1))
        first = await place(shop, asha, key="checkout-1")
        await fill(shop, asha, line(shirt, 1))  # so the repeat is placed again, and refused by its key
        again = await place(shop, asha, key="checkout-1")
        await fill(shop, ravi, line(shirt, 1))

        next_one = await placed(shop, ravi)

        assert again.json() == first.json()
        day = f"{shop.clock.now():%Y%m%d}"
        assert (first.json()["orderId"], next_one["orderId"]) == (f"ord_{day}_0001", f"ord_{day}_0002")


class TestRefusedInput:
    async def test_an_empty_cart(self, shop: Shop) -> None:
        asha = await buyer(shop)
        before = await world(shop, asha)

        response = await place(shop, asha)

        assert_error(response, 409, "CART_EMPTY")
        assert await world(shop, asha) == before
        assert before["orders"] == []

    async def test_a_cart_emptied_again(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1), line(shirt, 0))
        before = await world(shop, asha, shirt)

        assert_error(await place(shop, asha), 409, "CART_EMPTY")
        assert await world(shop, asha, shirt) == before

    async def test_someone_elses_shipping_address(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(shirt, 1))
        before = await world(shop, asha, shirt)

        response = await place(shop, asha, shippingAddressId=ravi.address_id)

        body = assert_error(response, 404, "ADDRESS_NOT_FOUND")
        assert [d["field"] for d in body["details"]] == ["body.shippingAddressId"]
        assert await world(shop, asha, shirt) == before

    async def test_an_unknown_billing_address(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        before = await world(shop, asha, shirt)

        response = await place(shop, asha, billingAddressId="adr_nosuchaddress")

        body = assert_error(response, 404, "ADDRESS_NOT_FOUND")
        assert [d["field"] for d in body["details"]] == ["body.billingAddressId"]
        assert await world(shop, asha, shirt) == before

    async def test_someone_elses_billing_address(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(shirt, 1))
        before = await world(shop, asha, shirt)

        assert_error(await place(shop, asha, billingAddressId=ravi.address_id), 404, "ADDRESS_NOT_FOUND")
        assert await world(shop, asha, shirt) == before

    async def test_a_user_id_of_another_user(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(shirt, 1))
        await fill(shop, ravi, line(shirt, 1))
        before = await world(shop, ravi, shirt)

        response = await place(shop, asha, userId=ravi.user_id)

        assert_error(response, 404, "CART_NOT_FOUND")
        assert await world(shop, ravi, shirt) == before
        assert await cart_lines(shop, asha) == [(shirt["productId"], shirt["variants"][0]["variantId"], 1)]

    async def test_a_cart_id_not_the_callers(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(shirt, 1))
        await fill(shop, ravi, line(shirt, 1))
        ravis_cart = (await shop.client.get("/api/v1/carts", headers=ravi.auth)).json()["cartId"]
        before = await world(shop, asha, shirt)

        response = await place(shop, asha, cartId=ravis_cart)

        assert_error(response, 404, "CART_NOT_FOUND")
        assert await world(shop, asha, shirt) == before

    async def test_the_callers_own_cart_id_is_accepted(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        own = (await shop.client.get("/api/v1/carts", headers=asha.auth)).json()["cartId"]

        order = await placed(shop, asha, cartId=own)

        assert order["status"] == "CONFIRMED"

    async def test_an_unpublished_product_in_the_cart(self, shop: Shop) -> None:
        # given a cart with a shirt and a mug, and the mug then unpublished
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        mug = await simple_product(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1), line(mug, 1))
        unpublished = await shop.client.post(f"/api/v1/products/{mug['productId']}/unpublish", headers=admin)
        assert unpublished.status_code == 200, unpublished.text
        before = await world(shop, asha, shirt, mug)

        response = await place(shop, asha)

        body = assert_error(response, 409, "CART_HAS_UNAVAILABLE_ITEMS")
        assert [d["field"] for d in body["details"]] == [mug["productId"]]
        assert await world(shop, asha, shirt, mug) == before

    async def test_a_deleted_product_in_the_cart(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 1))
        assert (await shop.client.delete(f"/api/v1/products/{mug['productId']}", headers=admin)).status_code == 204
        before = await world(shop, asha, mug)

        assert_error(await place(shop, asha), 409, "CART_HAS_UNAVAILABLE_ITEMS")
        assert await world(shop, asha, mug) == before

    async def test_not_enough_stock_fails_the_order_and_takes_nothing(self, shop: Shop) -> None:
        # given 3 shirts in the cart, then the stock cut to 2, and a coupon
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin, stock=5)
        await create_coupon(shop, admin, code="SAVE50", usageLimit=1)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 3))
        cut = await shop.client.post(
            "/api/v1/inventory/adjust",
            json={
                "productId": shirt["productId"],
                "variantId": shirt["variants"][0]["variantId"],
                "delta": -3,
                "reason": "damaged",
            },
            headers=admin,
        )
        assert cut.status_code == 200, cut.text
        before = await world(shop, asha, shirt)

        # when she places the order with the coupon
        response = await place(shop, asha, couponCode="SAVE50")

        # then it is refused, and the order is kept FAILED with nothing held
        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        short = f"{shirt['productId']}/{shirt['variants'][0]['variantId']}"
        assert [(d["field"], d["message"]) for d in body["details"]] == [(short, "asked 3, available 2")]
        [order] = await orders_stored(shop)
        assert (
            order["user_id"],
            order["status"],
            order["payment_status"],
            order["failure_reason"],
            order["saga_step"],
        ) == (
            asha.user_id,
            "FAILED",
            "NOT_CHARGED",
            "INSUFFICIENT_STOCK",
            "DONE",
        )
        assert order["coupon_code"] == "SAVE50"
        after = await world(shop, asha, shirt)
        assert (after["stock"], after["cart"], after["coupons"]) == (before["stock"], before["cart"], before["coupons"])
        assert await coupon_state(shop, "SAVE50") == (0, [])
        assert await stock(shop, shirt) == (7, 0, 7)
        assert [e["status"] for e in await shop.events("orders", "order.failed")] == ["FAILED"]
        assert await shop.events("orders", "order.confirmed") == []

    async def test_anonymous(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        before = await world(shop, asha, shirt)

        response = await shop.client.post(ORDERS, json=asha.body())

        assert response.status_code == 401, response.text
        assert await world(shop, asha, shirt) == before

    @pytest.mark.parametrize(
        "change",
        [
            {"unknown": 1},
            {"paymentMethod": "BITCOIN"},
            {"paymentMethod": "cod"},
            {"shippingAddressId": None},
            {"shippingAddressId": ""},
            {"couponCode": ""},
        ],
    )
    async def test_a_bad_body(self, shop: Shop, change: dict[str, Any]) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        before = await world(shop, asha, shirt)

        response = await shop.client.post(ORDERS, json=asha.body() | change, headers=asha.auth)

        assert_error(response, 400, "VALIDATION_FAILED")
        assert await world(shop, asha, shirt) == before

    async def test_no_shipping_address(self, shop: Shop) -> None:
        asha = await buyer(shop)
        response = await shop.client.post(ORDERS, json={"paymentMethod": "COD"}, headers=asha.auth)
        assert_error(response, 400, "VALIDATION_FAILED")
        assert await orders_stored(shop) == []


class TestIdempotencyKey:
    @staticmethod
    async def placed_with_a_key(shop: Shop) -> tuple[Buyer, dict[str, Any], httpx.Response]:
        """Asha's order of one shirt (5 in stock) placed with key `checkout-1`, and its answer."""
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        first = await place(shop, asha, key="checkout-1")
        assert first.status_code == 201, first.text
        return asha, shirt, first

    async def test_the_same_key_and_body_answer_the_same_order(self, shop: Shop) -> None:
        asha, shirt, first = await self.placed_with_a_key(shop)
        # the buyer fills the cart again: a retry must not order it
        await fill(shop, asha, line(shirt, 2))
        before = await world(shop, asha, shirt)

        again = await place(shop, asha, key="checkout-1")

        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert await world(shop, asha, shirt) == before
        assert len(before["orders"]) == 1
        assert await stock(shop, shirt) == (9, 0, 9)

    async def test_a_retry_after_the_order_emptied_the_cart_answers_the_same_order(self, shop: Shop) -> None:
        asha, shirt, first = await self.placed_with_a_key(shop)
        before = await world(shop, asha, shirt)
        assert before["cart"] == []

        again = await place(shop, asha, key="checkout-1")

        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert await world(shop, asha, shirt) == before
        # while another key with the same empty cart is refused as an empty cart is
        assert_error(await place(shop, asha, key="checkout-2"), 409, "CART_EMPTY")

    async def test_the_same_key_with_another_body_is_refused(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        office = await add_address(shop, asha.user_id, asha.auth, OFFICE)
        await fill(shop, asha, line(shirt, 1))
        assert (await place(shop, asha, key="checkout-1")).status_code == 201
        await fill(shop, asha, line(shirt, 1))
        before = await world(shop, asha, shirt)

        response = await place(shop, asha, key="checkout-1", billingAddressId=office)

        assert_error(response, 409, "IDEMPOTENCY_KEY_REUSED")
        assert await world(shop, asha, shirt) == before

    async def test_a_retry_of_an_order_that_failed_answers_the_same_refusal(self, shop: Shop) -> None:
        # given an order refused for want of stock
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=1)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 1))
        sold = await shop.client.post(
            "/api/v1/inventory/adjust",
            json={"productId": mug["productId"], "delta": -1, "reason": "sold"},
            headers=admin,
        )
        assert sold.status_code == 200, sold.text
        assert_error(await place(shop, asha, key="checkout-1"), 409, "INSUFFICIENT_STOCK")
        before = await world(shop, asha, mug)

        # when the client retries with the same key
        again = await place(shop, asha, key="checkout-1")

        # then it is told the same, not "201 Created"
        assert_error(again, 409, "INSUFFICIENT_STOCK")
        assert await world(shop, asha, mug) == before
        assert [o["status"] for o in before["orders"]] == ["FAILED"]

    async def test_keys_are_per_buyer(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(shirt, 1))
        await fill(shop, ravi, line(shirt, 1))

        hers = await place(shop, asha, key="checkout-1")
        his = await place(shop, ravi, key="checkout-1")

        assert (hers.status_code, his.status_code) == (201, 201)
        assert hers.json()["orderId"] != his.json()["orderId"]
        assert [(o["user_id"], o["idempotency_key"]) for o in await orders_stored(shop)] == [
            (asha.user_id, "checkout-1"),
            (ravi.user_id, "checkout-1"),
        ]

    async def test_without_a_key_each_request_is_a_new_order(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        shirt = await shirt_for_sale(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(shirt, 1))
        await placed(shop, asha)
        await fill(shop, asha, line(shirt, 1))
        await placed(shop, asha)

        assert len(await orders_stored(shop)) == 2
        assert await stock(shop, shirt) == (8, 0, 8)
