"""Forwarding k6's pushes to the user's Prometheus (forward.py), against an endpoint on loopback.

The push is the fixture test_aggregator_parts.py describes: k6 1.1.0's last push of a short run.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import cramjam
import pytest
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[5]
sys.path.insert(0, str(REPO / "files" / "containers" / "aggregator"))
sys.path.insert(0, str(REPO / "tests"))

from containers import load_entrypoint  # noqa: E402

load_entrypoint("aggregator")

import forward  # noqa: E402
import remote_pb2  # noqa: E402
from remote_write import parse  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "k6_1.1.0_remote_write.snappy"
LABELS = {"run_id": "run-1", "region": "eu-west-1", "task": "3"}


class Endpoint(ThreadingHTTPServer):
    """A remote-write endpoint that answers each push with the next of ``statuses`` (then 204) and keeps what it took."""

    def __init__(self, statuses=(), hold: threading.Event | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses = list(statuses)
        self.hold = hold
        self.taken = []  # (headers, WriteRequest) of the pushes answered 2xx
        self.attempts = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1/write"


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.hold is not None:
            self.server.hold.wait(10)
        self.server.attempts += 1
        status = self.server.statuses.pop(0) if self.server.statuses else 204
        if status < 300:
            request = remote_pb2.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
            self.server.taken.append((dict(self.headers), request))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def push():
    body = FIXTURE.read_bytes()
    return parse(body), len(body)


def forwarder(endpoint_url, auth=None, **kwargs):
    return forward.Forwarder(forward.Settings(endpoint_url, auth or forward.NoAuth()), LABELS, retry_delays=(0.01,), **kwargs)


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.shutdown()


def test_each_series_keeps_k6s_name_and_histogram_and_gains_the_task_labels_in_sorted_order(endpoint):
    original, size = push()
    expected = [(series.labels[0].value, len(series.histograms), len(series.samples)) for series in original.timeseries]
    sender = forwarder(endpoint.url)
    sender.submit(parse(FIXTURE.read_bytes()), size)
    counts = sender.close(5)

    assert counts == {"prometheus_sent": 1, "prometheus_refused": 0, "prometheus_dropped": 0, "prometheus_retries": 0, "prometheus_lost": 0}
    headers, taken = endpoint.taken[0]
    assert headers["Content-Encoding"] == "snappy" and headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert "Authorization" not in headers
    names = []
    for series in taken.timeseries:
        labels = [(label.name, label.value) for label in series.labels]
        assert labels == sorted(labels)
        assert {name: value for name, value in labels if name in LABELS} == LABELS
        names.append((dict(labels)["__name__"], len(series.histograms), len(series.samples)))
    assert sorted(names) == sorted(expected)
    assert any(name == "k6_http_req_duration_seconds" and histograms for name, histograms, _samples in names)


def test_labels_of_the_same_name_from_the_script_are_replaced_not_doubled():
    request = remote_pb2.WriteRequest()
    series = request.timeseries.add()
    series.labels.extend([remote_pb2.Label(name="__name__", value="k6_vus"), remote_pb2.Label(name="region", value="mine")])
    forward.with_labels(request, LABELS)
    assert [(label.name, label.value) for label in request.timeseries[0].labels] == [
        ("__name__", "k6_vus"), ("region", "eu-west-1"), ("run_id", "run-1"), ("task", "3")
    ]


def test_bearer_and_basic_credentials_go_in_the_authorization_header(endpoint):
    for auth, expected in (
        (forward.StaticAuth.bearer("t0ken"), "Bearer t0ken"),
        (forward.StaticAuth.basic("user", "pa:ss"), "Basic " + base64.b64encode(b"user:pa:ss").decode()),
    ):
        sender = forwarder(endpoint.url, auth)
        sender.submit(*push())
        assert sender.close(5)["prometheus_sent"] == 1
        assert endpoint.taken[-1][0]["Authorization"] == expected
    assert "t0ken" not in repr(forward.StaticAuth.bearer("t0ken"))


def test_sigv4_signs_each_push_for_the_aps_service_in_the_workspace_region(endpoint):
    auth = forward.SigV4Auth("eu-west-1", Credentials("AKIDEXAMPLE", "secret", "session-token"))
    sender = forwarder(endpoint.url, auth)
    sender.submit(*push())
    empty = remote_pb2.WriteRequest()
    sender.submit(empty, 0)
    assert sender.close(5)["prometheus_sent"] == 2
    first, second = (headers for headers, _request in endpoint.taken)
    assert first["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/aps/aws4_request" in first["Authorization"]
    assert first["X-Amz-Security-Token"] == "session-token"
    # The signature covers the body: another push, another signature.
    assert first["Authorization"].split("Signature=")[1] != second["Authorization"].split("Signature=")[1]


def test_throttled_and_unavailable_answers_are_tried_again_and_refusals_are_not():
    server = Endpoint(statuses=[503, 429, 204, 400])
    sender = forwarder(server.url)
    sender.submit(*push())
    sender.submit(*push())
    counts = sender.close(5)
    server.shutdown()
    assert counts == {"prometheus_sent": 1, "prometheus_refused": 1, "prometheus_dropped": 0, "prometheus_retries": 2, "prometheus_lost": 1}
    assert server.attempts == 4


def test_a_full_buffer_drops_the_oldest_push_and_keeps_the_newest():
    hold = threading.Event()
    server = Endpoint(hold=hold)
    sender = forwarder(server.url, max_queued_pushes=3)
    requests = []
    for index in range(8):
        request = remote_pb2.WriteRequest()
        series = request.timeseries.add()
        series.labels.add(name="__name__", value="k6_http_reqs_total")
        series.samples.add(value=float(index), timestamp=index)
        requests.append(request)
        sender.submit(request, 10)
        time.sleep(0.02)  # the first is taken by the sending thread and held by the endpoint
    hold.set()
    counts = sender.close(5)
    server.shutdown()
    sent = [taken.timeseries[0].samples[0].value for _headers, taken in server.taken]
    # The one in flight, then the newest three: the last push (the totals) is never the one dropped.
    assert sent == [0.0, 5.0, 6.0, 7.0]
    assert counts["prometheus_sent"] == 4 and counts["prometheus_dropped"] == 4


def test_an_endpoint_that_is_down_costs_only_the_pushes_it_missed_and_they_are_counted():
    closed = Endpoint()
    url = closed.url
    closed.shutdown()
    closed.server_close()  # nothing listens there now
    sender = forwarder(url, max_queued_pushes=5)
    for _push in range(12):
        sender.submit(*push())
    started = time.monotonic()
    counts = sender.close(0.5)
    assert time.monotonic() - started < 3
    assert counts["prometheus_sent"] == 0 and counts["prometheus_refused"] == 0
    assert counts["prometheus_dropped"] == counts["prometheus_lost"] == 12
    assert counts["prometheus_retries"] > 0
    sender.submit(*push())  # after close: counted, never sent
    assert sender.summary()["prometheus_dropped"] == 13


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CONSTELLATION_PROMETHEUS_URL": "prometheus:9090"}, "CONSTELLATION_PROMETHEUS_URL must be an http"),
        ({"CONSTELLATION_PROMETHEUS_URL": "https://u:p@example.com/w"}, "must not hold credentials"),
        ({"CONSTELLATION_PROMETHEUS_URL": "https://example.com/w", "CONSTELLATION_PROMETHEUS_AUTH": "oauth"}, "one of none, sigv4"),
        ({"CONSTELLATION_PROMETHEUS_URL": "https://example.com/w", "CONSTELLATION_PROMETHEUS_AUTH": "bearer"}, "_SECRET is required"),
        (
            {"CONSTELLATION_PROMETHEUS_URL": "https://example.com/w", "CONSTELLATION_PROMETHEUS_AUTH": "basic", "CONSTELLATION_PROMETHEUS_SECRET": "x"},
            "_USERNAME is required",
        ),
        ({"CONSTELLATION_PROMETHEUS_URL": "https://example.com/w", "CONSTELLATION_PROMETHEUS_AUTH": "sigv4"}, "_REGION is required"),
    ],
)
def test_a_bad_forwarding_setting_is_named(env, message):
    with pytest.raises(ValueError, match=message):
        forward.Settings.from_env(env)


def test_no_url_no_forwarding_and_a_good_one_is_taken():
    assert forward.Settings.from_env({}) is None
    settings = forward.Settings.from_env(
        {"CONSTELLATION_PROMETHEUS_URL": "https://example.com/w", "CONSTELLATION_PROMETHEUS_AUTH": "bearer", "CONSTELLATION_PROMETHEUS_SECRET": "s"}
    )
    assert settings.url == "https://example.com/w" and settings.auth == forward.StaticAuth.bearer("s")
