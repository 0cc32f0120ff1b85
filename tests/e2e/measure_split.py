"""The split deployment's checkout throughput, for the closing notes of issue 7 (a measurement,
not a test: it asserts nothing about time). It starts the deployment as the end-to-end test
does (tests/e2e/split.py: every module its own serve and worker process on its own PostgreSQL
database, Redis, RabbitMQ, nginx in front), then N buyers check out through the gateway for
a while, each from its own loopback address (nginx limits requests per client IP, as it should
with real buyers), the test playing the sandbox gateway; it waits until every paid order is
CONFIRMED and prints paid and confirmed checkouts per second.

    TIENDA_TEST_POSTGRES_URL=... TIENDA_TEST_REDIS_URL=... TIENDA_TEST_AMQP_URL=... \
        .venv/bin/python -m tests.e2e.measure_split --buyers 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from tests.e2e.split import ADMIN_EMAIL, ADMIN_PASSWORD, SplitDeployment
from tests.e2e.test_split_deployment import (
    Buyer,
    Clients,
    captured,
    deliver,
    eventually,
    fill_cart,
    login,
    new_buyer,
    ok,
    order_of,
    place,
    product_for_sale,
)


async def measure(split: SplitDeployment, buyers_count: int, seconds: float) -> None:
    with split.logs_on_failure():
        async with Clients(split.gateway) as clients:
            admin_client = await clients.new()
            admin = await login(admin_client, ADMIN_EMAIL, ADMIN_PASSWORD)
            products = [await product_for_sale(admin_client, admin, f"Bench Tee {n}", 100_000) for n in range(4)]
            own = [await clients.new() for _ in range(buyers_count)]
            buyers = await asyncio.gather(
                *(new_buyer(client, f"bench{n}@split.example.com") for n, client in enumerate(own))
            )
            hooks = [await clients.new() for _ in buyers]
            done: list[tuple[Buyer, str, float]] = []
            errors: dict[str, int] = {}
            loop = asyncio.get_running_loop()
            start = loop.time()
            deadline = start + seconds

            async def shop(n: int, who: Buyer) -> None:
                while loop.time() < deadline:
                    try:
                        await fill_cart(who, products[n % len(products)], 1)
                        order = ok(await place(who, uuid.uuid4().hex), 201)
                        answer = ok(await deliver(hooks[n], split.sandbox_secret, captured(order)))
                        assert answer["outcome"] == "CAPTURED", answer
                        done.append((who, order["orderId"], loop.time()))
                    except AssertionError as exc:
                        first = str(exc).splitlines()[0][:120]
                        errors[first] = errors.get(first, 0) + 1

            await asyncio.gather(*(shop(n, who) for n, who in enumerate(buyers)))
            flows_end = loop.time()

            async def all_confirmed() -> bool:
                statuses = await asyncio.gather(*(order_of(who, order_id) for who, order_id, _ in done))
                return all(s["status"] == "CONFIRMED" for s in statuses)

            await eventually(all_confirmed, "every paid order confirmed", within=120)
            confirmed_end = loop.time()
    flows = len(done)
    print(
        f"\nsplit deployment checkout, {buyers_count} buyers through nginx for {seconds:.0f}s: "
        f"{flows} checkouts = {flows / (flows_end - start):.1f}/s paid; all {flows} CONFIRMED "
        f"{confirmed_end - flows_end:.1f}s after the last payment "
        f"({flows / (confirmed_end - start):.1f}/s confirmed); errors: {errors or 'none'}"
    )
    if not flows or errors:
        raise SystemExit("the measurement is not valid: no checkout completed, or errors")


async def main(buyers: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="tienda-split-") as workdir:
        async with SplitDeployment(Path(workdir)) as split:
            await measure(split, buyers, seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.buyers, args.seconds))
