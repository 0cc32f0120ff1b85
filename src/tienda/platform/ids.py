"""Prefixed public ids (SEED.md section 11): numeric keys never leave a service."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijkmnopqrstuvwxyz"  # no l: easy to read aloud


_UNBIASED = 256 - 256 % len(_ALPHABET)
"""Random bytes below this map evenly onto the alphabet (the rest are dropped)."""


def new_public_id(prefix: str, length: int = 12) -> str:
    """`u_` + 12 random characters: about 61 bits, unguessable and unique in practice
    (a unique index stands behind it). The characters come from one read of the OS's random
    source (`secrets.choice` read it once per character: 24 us an id, two ids per cart write)."""
    chars: list[str] = []
    while len(chars) < length:
        chars += [_ALPHABET[b % len(_ALPHABET)] for b in secrets.token_bytes(length + 4) if b < _UNBIASED]
    return f"{prefix}_" + "".join(chars[:length])
