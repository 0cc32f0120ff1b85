"""Loopback ports for the servers tests start in processes of their own (a split deployment's
services, nginx, an SMTP server, a Redis server, `tienda dev`), and for ports nothing listens on."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral() -> range:
    """The ports the kernel gives outgoing connections (and `bind` to port 0)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


_EPHEMERAL = _ephemeral()
_CHOICES = [port for port in range(10_000, 65_536) if port not in _EPHEMERAL]
_RNG = random.Random()  # its own: a test that seeds the shared generator does not make every process pick alike


def free_port() -> int:
    """A port nothing listens on now, outside the kernel's range for outgoing connections.

    A port that `bind(("127.0.0.1", 0))` hands out is in that range: between the check and the
    server's own bind, seconds later, any outgoing connection of a busy machine may take it as
    its local port (CI saw a split deployment's service fail to bind so). Outside it, only
    another test that picked the same port at random could."""
    for _ in range(200):
        port = _RNG.choice(_CHOICES)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port outside the ephemeral range")
