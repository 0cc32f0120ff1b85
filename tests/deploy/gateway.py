"""Run the gateway of deploy/nginx on this machine: render its templates, start nginx.

For the tests here and the end-to-end split test::

    with running_gateway({"users": "127.0.0.1:8101", ...}, workdir=tmp_path) as base_url:
        httpx.get(f"{base_url}/api/v1/products")

`render()` does what the nginx container's entrypoint does with envsubst: it fills
`deploy/nginx/templates/*.template` from the upstream addresses and writes them to
`conf.d/` beside copies of nginx.conf and tienda.conf. nginx comes from Debian
(`apt-get install -y nginx`); without it the tests that need it skip, or fail on CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import string
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.backends import ON_CI
from tests.deploy.routing import DEPLOY, SERVICES
from tests.ports import free_port

NGINX_DIR = DEPLOY / "nginx"


def nginx_binary() -> str:
    """The nginx executable, or skip (fail on CI, where every test must run)."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )
    if found is None:
        message = "nginx is not installed (apt-get install -y nginx): the gateway cannot be run here"
        if ON_CI:
            pytest.fail(message + " (CI must provide it)", pytrace=False)
        pytest.skip(message)
    return found


def template_variables(upstreams: Mapping[str, str], listen: str) -> dict[str, str]:
    missing = [service for service in SERVICES if service not in upstreams]
    if missing:
        raise ValueError(f"no upstream address for {', '.join(missing)}")
    variables = {f"TIENDA_{service.upper()}_UPSTREAM": upstreams[service] for service in SERVICES}
    variables["TIENDA_GATEWAY_LISTEN"] = listen
    return variables


def render(conf_dir: Path, upstreams: Mapping[str, str], *, listen: str) -> Path:
    """Writes a runnable copy of the gateway's configuration under `conf_dir`; returns nginx.conf."""
    variables = template_variables(upstreams, listen)
    (conf_dir / "conf.d").mkdir(parents=True, exist_ok=True)
    for name in ("nginx.conf", "tienda.conf"):
        shutil.copyfile(NGINX_DIR / name, conf_dir / name)
    for template in sorted((NGINX_DIR / "templates").glob("*.template")):
        text = string.Template(template.read_text()).substitute(variables)
        (conf_dir / "conf.d" / template.name.removesuffix(".template")).write_text(text)
    return conf_dir / "nginx.conf"


def _globals(prefix: Path) -> str:
    directives = "daemon off;"
    if os.geteuid() == 0:
        # A root master would run its workers as `nobody`, who cannot enter pytest's
        # private temporary directories; in the container nginx is not root at all.
        directives += " user root root;"
    return directives


def check_config(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a rendered configuration."""
    prefix.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr", "-g", _globals(prefix)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def wait_for_port(
    host: str, port: int, *, timeout: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {host}:{port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def running_gateway(
    upstreams: Mapping[str, str], *, workdir: Path, port: int | None = None, host: str = "127.0.0.1"
) -> Iterator[str]:
    """nginx with the gateway's configuration in front of `upstreams` (service -> host:port);
    yields its base URL. Its error log goes to `workdir/nginx.log`."""
    binary = nginx_binary()
    port = port or free_port()
    conf = render(workdir / "conf", upstreams, listen=f"{host}:{port}")
    prefix = workdir / "prefix"
    checked = check_config(conf, prefix)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
    log = (workdir / "nginx.log").open("wb")
    process = subprocess.Popen(
        [binary, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr", "-g", _globals(prefix)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_for_port(host, port, process=process)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class _StubHandler(BaseHTTPRequestHandler):
    """Answers any request with who it is and what it received, as JSON."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # the head and the body in one write, flushed after each request
    server: StubServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536, length - received))
            if not chunk:
                break
            received += len(chunk)
        body = {
            "service": self.server.service,
            "method": self.command,
            "path": self.path,
            "requestId": self.headers.get("X-Request-ID"),
            "forwardedFor": self.headers.get("X-Forwarded-For"),
            "bodyBytes": received,
        }
        if "pad=1" in self.path:
            body["padding"] = "tienda " * 500
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: str) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.service = service

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def stub_services(services: tuple[str, ...] = SERVICES) -> Iterator[dict[str, str]]:
    """One stub HTTP server per service on 127.0.0.1; yields service -> host:port."""
    servers = [StubServer(service) for service in services]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield {server.service: server.address for server in servers}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
