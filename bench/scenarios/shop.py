"""A shop's day: what many shoppers do at once, in the proportions of the issue: 80% browse
(product pages, listings, searches), 15% put something in their cart, 5% check out and pay.
Each shopper's walk is a fixed, shuffled sequence of those actions (the same run after run);
one action = one request/s here, a checkout counting once for its three requests. The run is
valid only if the checkout scenario's consistency check passes afterwards."""

from __future__ import annotations

import random
from collections.abc import Sequence

from bench.flows import FlowClient, expect
from bench.scenario import BenchModule, LoadContext, Scenario, Target
from bench.scenarios import orders
from bench.scenarios.catalog import LISTINGS
from bench.scenarios.search import POPULAR, _path

MIX = (("product", 40), ("listing", 15), ("search", 25), ("cart", 15), ("checkout", 5))
"""Actions per 100."""


def _rows(target: Target) -> list[tuple[str, ...]]:
    rng = random.Random(20261126)
    buyers = orders._rows(target)
    actions = [name for name, weight in MIX for _ in range(weight)]
    rows: list[tuple[str, ...]] = []
    for index, (token, address_id, product_id, variant_id) in enumerate(buyers):
        rng.shuffle(actions)
        action = actions[index % len(actions)]
        if action == "product":
            path = f"/api/v1/products/{target.products[rng.randrange(len(target.products))]}"
        elif action == "listing":
            path = f"/api/v1/products?{LISTINGS[rng.randrange(len(LISTINGS))]}"
        elif action == "search":
            path = _path(POPULAR[rng.randrange(len(POPULAR))])
        else:
            path = ""
        rows.append((action, path, token, address_id, product_id, variant_id))
    return rows


async def shop_day(client: FlowClient, row: Sequence[str]) -> None:
    action, path, token, address_id, product_id, variant_id = row
    if action in ("product", "listing", "search"):
        expect(await client.get(path), action)
    elif action == "cart":
        expect(
            await client.post(
                "/api/v1/carts/items",
                json={"productId": product_id, "variantId": variant_id, "quantity": 1},
                headers={"Authorization": f"Bearer {token}"},
            ),
            "cart",
        )
    else:
        await orders.checkout(client, (token, address_id, product_id, variant_id))


async def _load(ctx: LoadContext) -> None:
    return None  # the catalog, carts and orders loaders made everything it needs


MODULE = BenchModule(
    name="shop",
    load=_load,
    scenarios=(
        Scenario(
            name="shop_day",
            description="Shoppers at once, each action one of: a product page (40%), a listing page with facets "
            "(15%), a search with facets (25%), a cart line (15%), a full checkout paid on the sandbox (5%).",
            concurrencies=(64,),
            flow=shop_day,
            rows=_rows,
            ceiling=None,
            check=orders.check,
        ),
    ),
)
