"""A Redis server of a test's own, on a free loopback port, that the test may kill and start
again (the shared one on 6379 serves other tests). It keeps nothing on disk: a restart loses
every key, as a Redis without persistence does."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests import backends
from tests.ports import free_port

BINARY = "redis-server"


def binary() -> str:
    """The redis-server program; skip (fail on CI, which has it) when it is not installed."""
    found = shutil.which(BINARY) or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if found is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server): no Redis of the test's own"
        if backends.ON_CI:
            pytest.fail(message + " (CI must have it)", pytrace=False)
        pytest.skip(message)
    return found


class RedisServer:
    def __init__(self, work_dir: Path) -> None:
        self.program = binary()
        self.work_dir = work_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.program,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(self.work_dir), "--logfile", str(self.work_dir / "redis.log")),
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                    client.ping()
                return
            except RedisConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        """Dies at once, as in a crash: every key is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()
