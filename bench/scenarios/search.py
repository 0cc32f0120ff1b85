"""Search: popular queries (answered from the cache while the index is unchanged) and
queries that are each new (the index searched and its facets counted every time)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.scenario import BenchModule, LoadContext, Scenario, Target

TIENDA = str(Path(sys.executable).with_name("tienda"))

# What shoppers type, with and without filters and sorts; misspellings and prefixes too.
POPULAR = (
    {"q": "shoes"},
    {"q": "red kurta"},
    {"q": "voltra earbuds", "sort": "price_asc"},
    {"q": "sneakrs"},
    {"q": "laptop", "attr.color": "black"},
    {"q": "cotton", "category": "clothing"},
    {"q": "smartw"},
    {"q": "pressure cooker", "maxPrice": "5000"},
    {"q": "novel", "sort": "newest"},
    {"q": "waterproof boots", "brand": "Stride"},
)
WORDS = ("shirt", "jeans", "sneakers", "lamp", "laptop", "kurta", "boots", "novel", "earbuds", "quilt")


async def load(ctx: LoadContext) -> None:
    """The catalog's loader inserted rows in bulk, which publishes no events: rebuild the
    index from the catalog, as `tienda seed` does, with the real command."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(TIENDA, "reindex", stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode or 1, [TIENDA, "reindex"])
    print(f"{out.decode().strip()} (search load: {time.perf_counter() - began:.1f}s)", file=sys.stderr, flush=True)


def _path(params: dict[str, str]) -> str:
    return "/api/v1/products/search?" + urlencode(params)


def _new_each_time(target: Target) -> list[tuple[str]]:
    """60,000 distinct searches (a word and a price floor, in paise steps): none repeats within
    a run, so every one searches the index and counts its facets."""
    return [(_path({"q": WORDS[n % len(WORDS)], "minPrice": f"{n // len(WORDS) / 100:.2f}"}),) for n in range(60_000)]


MODULE = BenchModule(
    name="search",
    load=load,
    scenarios=(
        Scenario(
            name="search_popular",
            description="GET /api/v1/products/search with facets, ten popular queries rotating (typos, "
            "prefixes, filters, sorts): from the Redis cache while the index is unchanged.",
            concurrencies=(32,),
            lua="get.lua",
            rows=lambda target: [(_path(q),) for q in POPULAR],
        ),
        Scenario(
            name="search_uncached",
            description="GET /api/v1/products/search with facets, 60,000 distinct queries (word + price "
            "floor): each searches the tantivy index and counts brand, category, price and attribute facets.",
            concurrencies=(32,),
            lua="get.lua",
            rows=_new_each_time,
        ),
    ),
)
