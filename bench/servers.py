"""Starting and stopping the ASGI servers under test: the shop in its production command
(`tienda serve`, i.e. uvicorn with uvloop and httptools) or granian, and the hello app on
the same server with the same worker count."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

SERVERS = ("uvicorn", "granian")
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_command(server: str, port: int, workers: int) -> list[str]:
    """The shop. uvicorn goes through `tienda serve`, the production command itself."""
    if server == "uvicorn":
        return [str(BIN / "tienda"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if server == "granian":
        return [*_granian(port, workers), "--factory", "tienda.asgi:create"]
    raise ValueError(f"unknown server {server!r}; known: {', '.join(SERVERS)}")


def app_env(server: str, workers: int, metrics_dir: Path) -> dict[str, str]:
    """What `tienda serve` adds to the environment of its workers, for the servers it does not
    start: with several workers, Prometheus metrics are kept in files shared by all of them."""
    if server == "uvicorn" or workers < 2:
        return {}
    metrics_dir.mkdir(parents=True, exist_ok=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "TIENDA_METRICS_MULTIPROCESS_DIR": str(metrics_dir)}


def hello_command(server: str, port: int, workers: int) -> list[str]:
    if server == "uvicorn":
        return [sys.executable, "-m", "bench.hello", str(port), str(workers)]
    if server == "granian":
        return [*_granian(port, workers), "bench.hello:app"]
    raise ValueError(f"unknown server {server!r}; known: {', '.join(SERVERS)}")


def _granian(port: int, workers: int) -> list[str]:
    return [
        str(BIN / "granian"),
        *("--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--loop", "uvloop", "--log-level", "warning"),
    ]


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


class ServerFailed(RuntimeError):
    pass


class Server:
    """A server process group, started in its own session so that stopping it reaches the
    workers it forked; output goes to `log` (the shop logs every request in production)."""

    def __init__(self, command: Sequence[str], *, port: int, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.port = port
        self.log = log
        self.env = dict(env) if env is not None else dict(os.environ)
        # bench.hello must be importable whatever the caller's directory.
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603
                self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT, start_new_session=True
            )

    def wait_ready(self, path: str = "/", *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ServerFailed(f"{self.command[0]} exited early; log:\n{self.log_tail()}")
            try:
                response = httpx.get(self.base_url + path, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise ServerFailed(f"{self.base_url}{path} not ready after {timeout}s ({last}); log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        group = self.proc.pid
        os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _group_alive(group):
            self.proc.poll()
            time.sleep(0.1)
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)
        self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
