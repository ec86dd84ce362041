"""A stand-in for the aggregator in the load generator tests: its HTTP contract, nothing stored.

GET /ready answers 200; POST /api/v1/write (k6's remote-write pushes) is counted and answered
204; POST /finish answers 200, prints a JSON summary line and exits 0.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

writes = 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ready" else 404)

    def do_POST(self) -> None:
        global writes
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/v1/write":
            writes += 1
            self._answer(204)
        elif self.path == "/finish":
            self._answer(200)
            print(json.dumps({"event": "stub-aggregator-finished", "writes": writes}), flush=True)
            threading.Thread(target=self.server.shutdown).start()
        else:
            self._answer(404)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass  # one line per k6 push would drown the summary line


if __name__ == "__main__":
    port = int(os.environ.get("CONSTELLATION_AGGREGATOR_PORT", "9464"))
    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        server.serve_forever()
