"""Prefixed public ids (SEED.md section 11): numeric keys never leave a service."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijkmnopqrstuvwxyz"  # no l: easy to read aloud


def new_public_id(prefix: str, length: int = 12) -> str:
    """`u_` + 12 random characters: about 61 bits, unguessable and unique in practice
    (a unique index stands behind it)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
