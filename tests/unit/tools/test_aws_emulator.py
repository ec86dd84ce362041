"""The emulator serves one DynamoDB request at a time, so that moto's item updates are atomic as DynamoDB's are."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aws_emulator
from moto import server


def most_at_once(monkeypatch, environ: dict) -> int:
    """How many of 16 requests with this environ moto's dispatch served at the same time (at most)."""
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

    monkeypatch.setattr(aws_emulator.DomainDispatcherApplication, "__call__", serve)
    app = aws_emulator.EmulatedAWS(server.create_backend_app)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: app(dict(environ), None), range(16)))
    assert answers == [[b"ok"]] * 16
    return most[0]


def test_dynamodb_requests_are_served_one_at_a_time(monkeypatch):
    assert most_at_once(monkeypatch, {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"}) == 1


def test_other_requests_are_served_concurrently(monkeypatch):
    assert most_at_once(monkeypatch, {"HTTP_X_AMZ_TARGET": "AmazonEC2ContainerServiceV20141113.RunTask"}) > 1
    assert most_at_once(monkeypatch, {}) > 1
