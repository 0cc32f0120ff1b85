"""`tienda serve`'s workers each listen on a socket of their own (SO_REUSEPORT), so that
connections that arrive together are spread over them instead of going to whichever worker
woke first (`tienda.platform.serving`)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port
from tienda.platform import serving

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not serving.BALANCED, reason="SO_REUSEPORT balances connections on Linux only")


def _listeners(port: int) -> int:
    """Listening TCP sockets on 127.0.0.1:port, from the kernel's own table."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1] == local and line.split()[3] == "0A")


def _answering_pids(port: int, connections: int) -> list[int]:
    """Opens `connections` connections at once, then asks each which process serves it."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(connections)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return [_read_pid(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _read_pid(sock: socket.socket) -> int:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return int(response.read())


class Supervisor:
    def __init__(self, port: int, workers: int) -> None:
        code = (
            "from tienda.platform import serving; "
            f"serving.run('tests.platform.pid_app:app', host='127.0.0.1', port={port}, workers={workers}, "
            "log_level='warning', lifespan='off')"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def wait_listening(self, count: int, *, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while _listeners(self.port) != count:
            assert self.process.poll() is None, self.process.communicate()[0].decode()
            assert time.monotonic() < deadline, f"{_listeners(self.port)} listeners, not {count}"
            time.sleep(0.1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def two_workers() -> Iterator[Supervisor]:
    supervisor = Supervisor(free_port(), workers=2)
    try:
        supervisor.wait_listening(2)
        yield supervisor
    finally:
        supervisor.stop()


def test_each_worker_listens_on_a_socket_of_its_own_and_takes_a_share_of_a_burst(two_workers: Supervisor) -> None:
    # uvicorn's own supervisor shares one listening socket: the kernel's table would show one.
    assert _listeners(two_workers.port) == 2
    served = Counter(_answering_pids(two_workers.port, 64))
    assert len(served) == 2, served
    # Spread by a hash of the addresses: 64 connections split 16/48 or worse about once in 20,000.
    assert min(served.values()) >= 16, served


def test_a_dead_worker_is_replaced_by_one_on_a_new_socket_of_the_group(two_workers: Supervisor) -> None:
    first = set(_answering_pids(two_workers.port, 32))
    victim = first.pop()
    os.kill(victim, signal.SIGKILL)
    two_workers.wait_listening(1, within=5)
    two_workers.wait_listening(2)
    served = Counter(_answering_pids(two_workers.port, 64))
    assert victim not in served
    assert len(served) == 2, served


def test_a_port_already_taken_stops_the_supervisor_before_any_worker_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        supervisor = Supervisor(port, workers=2)
        output, _ = supervisor.process.communicate(timeout=30)
    assert supervisor.process.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in output.decode()


def test_the_supervisors_own_socket_never_listens_and_pickles_as_a_new_socket_on_its_address() -> None:
    from multiprocessing.reduction import ForkingPickler

    held = serving.bind_reuse_port("127.0.0.1", 0)
    port = held.getsockname()[1]
    try:
        again = ForkingPickler.loads(ForkingPickler.dumps(held))
        try:
            assert again.fileno() != held.fileno()
            assert again.getsockname() == ("127.0.0.1", port)
            assert _listeners(port) == 0
        finally:
            again.close()
    finally:
        held.close()
