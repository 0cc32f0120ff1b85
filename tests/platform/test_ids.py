"""Public ids: prefix, length, alphabet, and every character equally likely."""

from __future__ import annotations

from collections import Counter

from tienda.platform.ids import _ALPHABET, new_public_id


def test_ids_are_the_prefix_and_twelve_characters_of_the_alphabet() -> None:
    ids = [new_public_id("ci") for _ in range(10_000)]

    assert len(set(ids)) == len(ids)
    assert all(i.startswith("ci_") and len(i) == 15 and set(i[3:]) <= set(_ALPHABET) for i in ids)
    assert len(new_public_id("ord", length=20)) == 24


def test_every_character_is_equally_likely() -> None:
    counts = Counter("".join(new_public_id("u")[2:] for _ in range(50_000)))

    assert set(counts) == set(_ALPHABET)
    # 600,000 characters, 17,143 expected each (sd ~130): a byte taken modulo 35 without
    # dropping the last 11 values would make 11 of them 14% more frequent than the rest.
    assert max(counts.values()) / min(counts.values()) < 1.08
