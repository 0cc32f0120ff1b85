"""The search index: an embedded tantivy index on disk that only the search module touches.

Layout under the index root::

    current -> gen-000003       symlink to the generation that readers use
    gen-000003/                 a complete tantivy index
    write.lock                  held (flock) by whoever changes the index

Writers (the event consumer, a reindex) take `write.lock`, so changes from several processes
never interleave. A reindex builds a new generation beside the live one and switches the
`current` link atomically: searches go on against the old generation until the switch, so
there is no downtime, and events that arrive meanwhile wait for the lock and are applied to
the new generation afterwards, so none is lost.

Every document carries the version of the product it came from (the time of the change, in
microseconds); a change older than what the index holds is ignored, so redelivered or
reordered events cannot bring back an old price. A product the public may not see (deleted,
unpublished) stays as a tombstone: its version, no text, never matched by a search.

Readers key their cache by `version()`: the generation plus the identity of the last commit's
`meta.json`, which tantivy replaces atomically on each commit. A reader seeing a new version
reloads before searching, so nothing cached under a version was computed from an older one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import tantivy
from tantivy import Document, Filter, Index, Occur, Order, Query, SchemaBuilder, TextAnalyzerBuilder, Tokenizer

from tienda.search.domain import Change, IndexedProduct, SearchRequest, SearchResult

WRITER_HEAP = 32_000_000
MAX_QUERY_WORDS = 16
MAX_SPLIT_LENGTH = 24
FUZZY_MIN_LENGTH = 5
"""One edit is allowed on a word of at least this many letters."""

# Relevance: a word found in the name weighs most, then the brand, then the category, then
# the description; an exact (stemmed) word beats a misspelt or unfinished one.
STEMMED = {"name": 4.0, "brand_text": 2.5, "category_text": 1.5}
UNSTEMMED = {"words": 4.0, "attr_text": 1.5, "description": 1.0}
FUZZY_BOOST = 1.2
PREFIX_BOOST = 1.5


def _schema() -> tantivy.Schema:
    builder = SchemaBuilder()
    builder.add_text_field("product_id", stored=True, tokenizer_name="raw")
    builder.add_unsigned_field("visible", indexed=True)
    builder.add_integer_field("version", stored=True)
    builder.add_text_field("name", tokenizer_name="en_stem")
    builder.add_text_field("description", tokenizer_name="default")  # unstemmed: "fitness" is not "fit"
    builder.add_text_field("brand_text", tokenizer_name="en_stem")
    builder.add_text_field("category_text", tokenizer_name="en_stem")
    builder.add_text_field("words", tokenizer_name="default")  # name and brand, unstemmed: prefixes, typos
    builder.add_text_field("attr_text", tokenizer_name="default")  # variant attribute values: "red", "xl"
    builder.add_text_field("brand", tokenizer_name="raw", fast=True)
    builder.add_text_field("category_id", tokenizer_name="raw", fast=True)
    builder.add_text_field("attr", tokenizer_name="raw", fast=True)  # "color=red", lower case
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_integer_field("created", fast=True)
    builder.add_unsigned_field("in_stock", indexed=True)  # 1: a unit can be bought
    builder.add_bytes_field("hit", stored=True)  # the JSON a search answers with
    return builder.build()


SCHEMA = _schema()
SCHEMA_VERSION = "3"
"""Written into each generation; a generation of another version is rebuilt at start."""

_WORDS = TextAnalyzerBuilder(Tokenizer.simple()).filter(Filter.remove_long(40)).filter(Filter.lowercase()).build()
_STEM = TextAnalyzerBuilder(Tokenizer.simple()).filter(Filter.stemmer("english")).build()
_MEANINGFUL = (
    TextAnalyzerBuilder(Tokenizer.simple())
    .filter(Filter.remove_long(40))
    .filter(Filter.lowercase())
    .filter(Filter.stopword("english"))
    .build()
)


def document(product: IndexedProduct) -> Document:
    doc = Document()
    doc.add_text("product_id", product.product_id)
    doc.add_unsigned("visible", 1)
    doc.add_integer("version", product.version)
    doc.add_text("name", product.name)
    doc.add_text("description", product.description)
    doc.add_text("category_text", product.category_text)
    doc.add_text("words", product.name)
    if product.brand:
        doc.add_text("brand_text", product.brand)
        doc.add_text("words", product.brand)
        doc.add_text("brand", product.brand)
    if product.category_id:
        doc.add_text("category_id", product.category_id)
    for key, value in sorted(set(product.attributes)):
        doc.add_text("attr", f"{key}={value}")
        doc.add_text("attr_text", value)
    doc.add_float("price", float(product.price))
    doc.add_integer("created", product.created)
    doc.add_unsigned("in_stock", 1 if product.in_stock else 0)
    doc.add_bytes("hit", product.hit)
    return doc


def tombstone(product_id: str, version: int) -> Document:
    doc = Document()
    doc.add_text("product_id", product_id)
    doc.add_unsigned("visible", 0)
    doc.add_integer("version", version)
    return doc


# -- queries ------------------------------------------------------------------------------


def query_words(text: str) -> list[str]:
    """The words of a query that carry meaning (stop words dropped unless nothing else is
    left), lower case, at most MAX_QUERY_WORDS. Any string is fine: there is no syntax."""
    meaningful = _MEANINGFUL.analyze(text)
    words = meaningful or _WORDS.analyze(text)
    unique = list(dict.fromkeys(words))
    return unique[:MAX_QUERY_WORDS]


def _stem(word: str) -> str:
    stems = _STEM.analyze(word)
    return stems[0] if stems else word


Known = Callable[[str, str], bool]
"""Whether the index holds a term in a field."""


def _word_query(word: str, *, last: bool, known: Known) -> Query:
    """One query word: the word (stemmed where the field is) in any text field, weighted by
    field; the last word may be unfinished (a prefix of a name word). A word of 5+ letters
    that the index does not know is taken as a typo and matched within one edit: a word it
    knows ("boots") is not widened to its neighbours ("books")."""
    stem = _stem(word)
    parts = [Query.boost_query(Query.term_query(SCHEMA, f, stem), boost) for f, boost in STEMMED.items()]
    parts += [Query.boost_query(Query.term_query(SCHEMA, f, word), boost) for f, boost in UNSTEMMED.items()]
    exists = any(known(f, stem) for f in STEMMED) or any(known(f, word) for f in UNSTEMMED)
    if len(word) >= FUZZY_MIN_LENGTH and not exists:
        parts += [
            Query.boost_query(Query.fuzzy_term_query(SCHEMA, f, word, distance=1), FUZZY_BOOST * boost / 4)
            for f, boost in UNSTEMMED.items()
        ]
        parts.append(
            Query.boost_query(Query.fuzzy_term_query(SCHEMA, "category_text", stem, distance=1), FUZZY_BOOST * 0.4)
        )
    if not exists and len(word) <= MAX_SPLIT_LENGTH:
        # A compound typed as one word ("tshirt", "smartwatch" for "smart watch"): two known
        # words, one after the other in a name.
        parts += [
            Query.boost_query(Query.phrase_query(SCHEMA, "words", [word[:i], word[i:]]), UNSTEMMED["words"])
            for i in range(1, len(word))
            if known("words", word[:i]) and known("words", word[i:])
        ]
    if last:
        parts.append(
            Query.boost_query(Query.fuzzy_term_query(SCHEMA, "words", word, distance=0, prefix=True), PREFIX_BOOST)
        )
    return Query.disjunction_max_query(parts, tie_breaker=0.3)


def text_query(text: str, *, known: Known, require_all: bool = True, words: list[str] | None = None) -> Query | None:
    """The query for what was typed (`words`: its query_words, when the caller has them)."""
    words = query_words(text) if words is None else words
    if not words:
        return None
    occur = Occur.Must if require_all else Occur.Should
    unfinished = not text[-1:].isspace()
    return Query.boolean_query(
        [(occur, _word_query(w, last=unfinished and i == len(words) - 1, known=known)) for i, w in enumerate(words)]
    )


def _nothing(request: SearchRequest) -> SearchResult:
    return SearchResult(hits=[], total=0, price_ranges=[0] * len(request.price_bounds))


def _known_in(searcher: tantivy.Searcher) -> Known:
    return lambda field, term: searcher.doc_freq(field, term) > 0


def filter_query(request: SearchRequest) -> list[tuple[Occur, Query]]:
    clauses: list[tuple[Occur, Query]] = [(Occur.Must, Query.term_query(SCHEMA, "visible", 1))]
    if request.in_stock:
        clauses.append((Occur.Must, Query.term_query(SCHEMA, "in_stock", 1)))
    if request.category_ids is not None:
        clauses.append((Occur.Must, Query.term_set_query(SCHEMA, "category_id", sorted(request.category_ids))))
    if request.brands:
        clauses.append((Occur.Must, Query.term_set_query(SCHEMA, "brand", sorted(request.brands))))
    if request.min_price is not None or request.max_price is not None:
        clauses.append(
            (
                Occur.Must,
                Query.range_query(
                    SCHEMA,
                    "price",
                    tantivy.FieldType.Float,
                    float(request.min_price) if request.min_price is not None else None,
                    float(request.max_price) if request.max_price is not None else None,
                ),
            )
        )
    for key, values in request.attributes:
        terms = sorted(f"{key}={v}" for v in values)
        clauses.append((Occur.Must, Query.term_set_query(SCHEMA, "attr", terms)))
    return clauses


SORTS: dict[str, tuple[str, Order]] = {
    "price_asc": ("price", Order.Asc),
    "price_desc": ("price", Order.Desc),
    "newest": ("created", Order.Desc),
}


# -- the index ----------------------------------------------------------------------------


class IndexLock:
    """An exclusive flock on `write.lock`: between processes, and between threads of one
    process too (each acquisition opens its own file description)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> IndexLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class SearchIndex:
    """The on-disk index: readers search the current generation; writers hold the lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._reader: tuple[str, Index] | None = None
        self._seen: str | None = None
        self._reload = threading.Lock()

    @property
    def current(self) -> Path:
        return self.root / "current"

    def lock(self) -> IndexLock:
        return IndexLock(self.root / "write.lock")

    # -- reading --------------------------------------------------------------------------

    def version(self) -> str:
        """Changes whenever the index does (a commit or a switch to a new generation)."""
        try:
            meta = os.stat(self.current / "meta.json")
            generation = os.readlink(self.current)
        except FileNotFoundError:
            return "empty"
        return f"{generation}:{meta.st_ino}:{meta.st_mtime_ns}:{meta.st_size}"

    def searcher(self) -> tantivy.Searcher | None:
        version = self.version()
        with self._reload:
            if version == "empty":
                return None
            generation = version.split(":", 1)[0]
            if self._reader is None or self._reader[0] != generation:
                index = Index.open(str(self.root / generation))
                index.config_reader("manual")
                self._reader = (generation, index)
            elif version != self._seen:
                self._reader[1].reload()
            self._seen = version
            return self._reader[1].searcher()

    def search(self, request: SearchRequest) -> SearchResult:
        searcher = self.searcher()
        words = query_words(request.text)
        if searcher is None or (request.text.strip() and not words):
            # No index yet; or typed, but nothing searchable in it (symbols, a 10 KB "word").
            return _nothing(request)
        filters = filter_query(request)
        result = self._run(searcher, request, filters, words, require_all=True)
        if result.total == 0 and len(words) > 1:
            result = self._run(searcher, request, filters, words, require_all=False)  # no product has every word
        return result

    def _run(
        self,
        searcher: tantivy.Searcher,
        request: SearchRequest,
        filters: list[tuple[Occur, Query]],
        words: list[str],
        *,
        require_all: bool,
    ) -> SearchResult:
        text = text_query(request.text, known=_known_in(searcher), require_all=require_all, words=words)
        query = Query.boolean_query([*filters, (Occur.Must, text)] if text else filters)
        sort = SORTS.get(request.sort) or (None if text else SORTS["newest"])
        if sort is None:
            found = searcher.search(query, request.limit, count=True, offset=request.offset)
        else:
            found = searcher.search(
                query, request.limit, count=True, order_by_field=sort[0], order=sort[1], offset=request.offset
            )
        hits = [searcher.doc(address).get_first("hit") for _, address in found.hits]
        result = SearchResult(hits=[h for h in hits if isinstance(h, bytes)], total=found.count or 0)  # type: ignore[attr-defined]
        if not result.total:
            return _nothing(request)
        self._facets(searcher, query, request, result)
        return result

    @staticmethod
    def _facets(searcher: tantivy.Searcher, query: Query, request: SearchRequest, result: SearchResult) -> None:
        bounds = [float(b) for b in request.price_bounds]
        ranges: list[dict[str, float]] = [
            {"from": low, "to": high} if high is not None else {"from": low}
            for low, high in zip(bounds, [*bounds[1:], None], strict=True)
        ]
        aggregations: dict[str, Any] = {
            "brands": {"terms": {"field": "brand", "size": 50}},
            "categories": {"terms": {"field": "category_id", "size": 100}},
            "attributes": {"terms": {"field": "attr", "size": 200}},
        }
        if ranges:
            aggregations["prices"] = {"range": {"field": "price", "ranges": ranges}}
        found = searcher.aggregate(query, aggregations)

        def buckets(name: str) -> list[tuple[str, int]]:
            return [(str(b["key"]), int(b["doc_count"])) for b in found.get(name, {}).get("buckets", [])]

        result.brands = buckets("brands")
        result.categories = buckets("categories")
        # tantivy adds buckets for the gaps (below the first bound); keep the ranges asked for.
        by_start = {b.get("from"): int(b["doc_count"]) for b in found.get("prices", {}).get("buckets", [])}
        result.price_ranges = [by_start.get(low, 0) for low in bounds]
        for pair, count in buckets("attributes"):
            key, _, value = pair.partition("=")
            result.attributes.setdefault(key, []).append((value, count))

    def suggest(self, text: str, *, limit: int) -> tuple[list[str], list[bytes]]:
        """Completions of the last word (most frequent first) and the products best matching
        what was typed so far."""
        searcher = self.searcher()
        words = _WORDS.analyze(text)
        if searcher is None or not words:
            return [], []
        visible = Query.term_query(SCHEMA, "visible", 1)
        completions: list[str] = []
        if not text[-1:].isspace():
            candidates = searcher.terms_with_prefix("words", words[-1], limit=200)
            completions = [t for t, _ in sorted(candidates, key=lambda tc: (-tc[1], tc[0]))][:limit]
        typed = text_query(text, known=_known_in(searcher), require_all=True)
        products: list[bytes] = []
        if typed is not None:
            found = searcher.search(Query.boolean_query([(Occur.Must, visible), (Occur.Must, typed)]), limit)
            products = [h for _, a in found.hits if isinstance(h := searcher.doc(a).get_first("hit"), bytes)]
        return completions, products

    # -- writing --------------------------------------------------------------------------

    def generations(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("gen-"))

    def ensure(self) -> bool:
        """Create an empty index if there is none; True when it did."""
        if self.version() != "empty":
            return False
        lock = self.lock().acquire()
        try:
            if self.version() != "empty":
                return False
            self._create_empty()
            return True
        finally:
            lock.release()

    def _create_empty(self) -> str:
        generation = self._new_generation()
        writer = Index(SCHEMA, path=str(self.root / generation)).writer(WRITER_HEAP, 1)
        writer.commit()
        writer.wait_merging_threads()
        self._switch(generation)
        return generation

    def apply(self, changes: Sequence[Change]) -> int:
        """Apply changes newer than what the index holds; the caller holds the lock. Returns
        how many were applied."""
        if not changes:
            return 0
        generation = os.readlink(self.current) if self.current.exists() else self._create_empty()
        index = Index.open(str(self.root / generation))
        held = self._versions(index, {c.product_id for c in changes})
        latest: dict[str, Change] = {}
        for change in changes:
            if change.version >= held.get(change.product_id, -1) and (
                change.product_id not in latest or change.version >= latest[change.product_id].version
            ):
                latest[change.product_id] = change
        if not latest:
            return 0
        writer = index.writer(WRITER_HEAP, 1)
        for change in latest.values():
            writer.delete_documents_by_term("product_id", change.product_id)
            writer.add_document(
                document(change.product) if change.product else tombstone(change.product_id, change.version)
            )
        writer.commit()
        writer.wait_merging_threads()
        return len(latest)

    @staticmethod
    def _versions(index: Index, product_ids: set[str]) -> dict[str, int]:
        index.reload()
        searcher = index.searcher()
        query = Query.term_set_query(SCHEMA, "product_id", sorted(product_ids))
        found = searcher.search(query, len(product_ids) * 2 + 1)
        held: dict[str, int] = {}
        for _, address in found.hits:
            doc = searcher.doc(address)
            product_id, version = doc.get_first("product_id"), doc.get_first("version")
            if isinstance(version, int):
                held[str(product_id)] = max(version, held.get(str(product_id), -1))
        return held

    @contextlib.contextmanager
    def building(self) -> Iterator[Builder]:
        """A new generation, filled by the caller, made current when the block ends without
        an error; the caller holds the lock."""
        generation = self._new_generation()
        builder = Builder(Index(SCHEMA, path=str(self.root / generation)))
        try:
            yield builder
            builder.writer.commit()
            builder.writer.wait_merging_threads()
        except BaseException:
            shutil.rmtree(self.root / generation, ignore_errors=True)
            raise
        self._switch(generation)

    def _new_generation(self) -> str:
        existing = self.generations()
        number = int(existing[-1].removeprefix("gen-")) + 1 if existing else 1
        generation = f"gen-{number:06d}"
        (self.root / generation).mkdir(parents=True)
        (self.root / generation / "tienda-schema").write_text(SCHEMA_VERSION)
        return generation

    def outdated(self) -> bool:
        """True when the current generation was built with another schema (after an upgrade)."""
        marker = self.current / "tienda-schema"
        return self.current.exists() and (not marker.exists() or marker.read_text().strip() != SCHEMA_VERSION)

    def _switch(self, generation: str) -> None:
        link = self.root / "current.next"
        link.unlink(missing_ok=True)
        link.symlink_to(generation)
        os.replace(link, self.current)
        # Keep the one before for readers that still have it open; older ones go.
        for old in self.generations()[:-2]:
            if old != generation:
                shutil.rmtree(self.root / old, ignore_errors=True)


class Builder:
    def __init__(self, index: Index) -> None:
        self.writer = index.writer(WRITER_HEAP * 4, 0)
        self.count = 0

    def add(self, products: Sequence[IndexedProduct]) -> None:
        for product in products:
            self.writer.add_document(document(product))
        self.count += len(products)
