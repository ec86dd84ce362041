"""The emulator serves one request at a time, so that moto's item updates are atomic as DynamoDB's are."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import moto_atomic
from moto import server


def test_requests_are_served_one_at_a_time(monkeypatch):
    active, most = [0], [0]
    guard = threading.Lock()

    def serve(self, environ, start_response):  # stands in for moto's own dispatch
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.02)
        with guard:
            active[0] -= 1
        return [b"ok"]

    monkeypatch.setattr(server.DomainDispatcherApplication, "__call__", serve)
    app = moto_atomic.OneRequestAtATime(server.create_backend_app)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: app({}, None), range(16)))

    assert answers == [[b"ok"]] * 16
    assert most[0] == 1
