"""`split_checkout`: the checkout scenario on the split deployment, in the same run as the
one-process shop, so the two figures sit side by side in one table.

The deployment is the end-to-end test's (tests/e2e/split.py): for each of the eight modules
its own `tienda serve --service M` (one uvicorn worker) and `tienda worker --service M`,
each on its own PostgreSQL database, with the run's Redis and RabbitMQ, and nginx with the
gateway's configuration (deploy/nginx) in front. Every request of the flow goes through nginx.

The buyers are real accounts: each registers, signs in and adds an address through the
gateway (so argon2 runs once per buyer, before the measured interval), and the admin lists
four products with stock. Each buyer then checks out again and again with the same flow as
the `checkout` scenario (bench/scenarios/orders.py), from its own loopback address: the
gateway limits requests per client IP, as it must with real buyers, and one address for
everyone would measure the limit. Afterwards the same consistency check runs, on each
module's own database.

The server column says `split`; the server CPU column is every process the deployment
started (sixteen `tienda` processes and nginx), the largest first.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.data import analyze
from bench.flows import AiohttpClient, run_flow, runner
from bench.measure import CpuWatch
from bench.results import Row
from bench.scenarios.orders import Stores, checkout_flow, consistent

NAME = "split_checkout"
SERVER = "split"
CONCURRENCIES = (20, 100)
STOCK = 1_000_000
"""Units of each product on sale: more than any run sells."""


def measure(
    *,
    postgres_url: str,
    redis_url: str,
    broker_url: str,
    concurrencies: Sequence[int] = CONCURRENCIES,
    duration: float,
    warmup: float,
) -> list[Row]:
    """Starts the split deployment, measures the checkout at each concurrency, checks, stops."""
    # tests/e2e/split.py finds the servers where the test suite does.
    os.environ.update(
        {
            "TIENDA_TEST_POSTGRES_URL": postgres_url,
            "TIENDA_TEST_REDIS_URL": redis_url,
            "TIENDA_TEST_AMQP_URL": broker_url,
        }
    )
    with runner() as loop_runner:
        return loop_runner.run(_measure(concurrencies, duration, warmup))


async def _measure(concurrencies: Sequence[int], duration: float, warmup: float) -> list[Row]:
    from tests.e2e.split import ADMIN_EMAIL, ADMIN_PASSWORD, SplitDeployment
    from tests.e2e.test_split_deployment import Clients, login, new_buyer, product_for_sale

    with tempfile.TemporaryDirectory(prefix="tienda-bench-split-") as workdir:
        async with SplitDeployment(Path(workdir)) as split:
            with split.logs_on_failure():
                async with Clients(split.gateway) as setup:
                    admin_client = await setup.new()
                    admin = await login(admin_client, ADMIN_EMAIL, ADMIN_PASSWORD)
                    products = [await product_for_sale(admin_client, admin, f"Bench Tee {n}", STOCK) for n in range(4)]
                    own = [await setup.new() for _ in range(max(concurrencies))]
                    buyers = await asyncio.gather(
                        *(new_buyer(client, f"bench{n}@split.example.com") for n, client in enumerate(own))
                    )
                    # Each buyer's flows go from the address it signed up from.
                    addresses = [setup.addresses[client] for client in own]
                rows = [
                    (
                        buyer.auth["Authorization"].removeprefix("Bearer "),
                        buyer.address_id,
                        products[n % len(products)]["productId"],
                        products[n % len(products)]["variants"][0]["variantId"],
                    )
                    for n, buyer in enumerate(buyers)
                ]
                flow = checkout_flow(split.sandbox_secret)
                clients = [AiohttpClient(split.gateway, 2, local_address=address) for address in addresses]
                measured: list[Row] = []
                try:
                    await run_flow(clients, flow, rows, concurrency=max(concurrencies), duration=warmup)
                    for service in split.services.values():  # as bench.run does after a warm-up
                        await analyze(service.database_url)
                    for c in concurrencies:
                        watch = CpuWatch(os.getpid(), skip_root=True)
                        m = await run_flow(clients, flow, rows[:c], concurrency=c, duration=duration)
                        measured.append(Row.of(NAME, SERVER, c, "asyncio", m, cpu=watch.stop()))
                finally:
                    for client in clients:
                        await client.close()
                stores = Stores(
                    orders=split.services["orders"].database_url,
                    payments=split.services["payments"].database_url,
                    inventory=split.services["inventory"].database_url,
                    notifications=split.services["notifications"].database_url,
                )
                problems = await consistent(stores, stock=STOCK)
    for row in measured:
        row.error_kinds.update({f"check: {p}": 1 for p in problems})
        row.errors += len(problems)
    return measured
