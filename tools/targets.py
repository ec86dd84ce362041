"""HTTP targets on loopback for the benchmarks.

nginx_target: fast (nginx from Debian with a throwaway config), for rates and write counts.
api_like_target: slow on purpose (a Python server with lognormal latencies), for percentiles.
Both answer /api/users, /api/orders, /api/search with 200 and /api/fail with 500.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from emulator import free_port, wait_until_up

NGINX_CONFIG = """
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location /api/users  {{ return 200 '{{"users":[1,2,3]}}'; }}
        location /api/orders {{ return 200 '{{"orders":[]}}'; }}
        location /api/search {{ return 200 '{{"hits":0}}'; }}
        location /api/fail   {{ return 500 'no'; }}
        location /           {{ return 200 'ok'; }}
    }}
}}
"""


def nginx_binary() -> str:
    for candidate in ("nginx", "/usr/sbin/nginx"):
        found = shutil.which(candidate)
        if found:
            return found
    raise SystemExit("nginx is not installed: `apt-get install nginx-light` (make bench does it)")


@contextlib.contextmanager
def nginx_target() -> Iterator[str]:
    """Run nginx on 127.0.0.1 for the duration of the block; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="constellation-nginx-") as workdir:
        config = Path(workdir) / "nginx.conf"
        config.write_text(NGINX_CONFIG.format(workdir=workdir, port=port))
        process = subprocess.Popen([nginx_binary(), "-c", str(config), "-p", workdir])
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, process, "nginx")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


class _ApiHandler(BaseHTTPRequestHandler):
    """Answers after a lognormal wait, like a real API; a path ending in /fail answers 500."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes wait 40 ms for a delayed ACK
    median_seconds = 0.008
    sigma = 0.5
    routes: ClassVar[dict[str, tuple[float, float]]] = {}  # path prefix -> (median ms, share of 503 answers)
    seen: ClassVar[list | None] = None  # when a list, every request's (path, headers) is appended to it
    delay: ClassVar[Callable[[], float] | None] = None  # when set, each answer's wait in seconds, for every path

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def _answer(self) -> None:
        if self.seen is not None:
            self.seen.append((self.path, dict(self.headers)))
        median_seconds, error_rate = self.median_seconds, 0.0
        for prefix, (route_median_ms, route_error_rate) in self.routes.items():
            if self.path.startswith(prefix):
                median_seconds, error_rate = route_median_ms / 1000, route_error_rate
                break
        delay = type(self).delay
        time.sleep(delay() if delay is not None else random.lognormvariate(math.log(median_seconds), self.sigma))
        body = b'{"ok":true}'
        if self.path.endswith("/fail"):
            self.send_response(500)
        else:
            self.send_response(503 if random.random() < error_rate else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        return


class _QuietServer(ThreadingHTTPServer):
    """A load generator that stops mid-request (k6 ending, Ctrl-C) is normal here, not a traceback."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def api_like_target(
    median_ms: float = 8.0,
    sigma: float = 0.5,
    routes: dict[str, tuple[float, float]] | None = None,
    seen: list | None = None,
    delay: Callable[[], float] | None = None,
) -> Iterator[str]:
    """A threaded Python server on 127.0.0.1 with lognormal latencies; yields its base URL.

    ``routes`` gives paths starting with a prefix their own median latency (ms) and a share of
    ``503`` answers; other paths wait ``median_ms``. ``seen``, a list, receives every request's
    path and headers. ``delay``, a function, draws every answer's wait (seconds) instead: another
    distribution of latencies.
    """
    handler = type(
        "ApiHandler",
        (_ApiHandler,),
        {"median_seconds": median_ms / 1000, "sigma": sigma, "routes": dict(routes or {}), "seen": seen,
         "delay": staticmethod(delay) if delay is not None else None},
    )
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# The demo's service: endpoints with their own latencies and a small error rate, so the report
# has something to show.
DEMO_ROUTES = {"/api/users": (6.0, 0.0), "/api/search": (25.0, 0.0), "/api/orders": (45.0, 0.02)}


def demo_target() -> contextlib.AbstractContextManager[str]:
    """:func:`api_like_target` with :data:`DEMO_ROUTES`."""
    return api_like_target(routes=DEMO_ROUTES)
