"""The aggregator: k6 remote-write pushes in, interval records out to the results store.

It runs beside k6 (the same ECS task, or a local process) and receives k6's
``experimental-prometheus-rw`` output, which aggregates inside k6: a push per push interval
carrying cumulative counters and native histograms, whatever the request rate. It turns them into
interval records (``records.py``) and writes them to Timestream or S3 (``stores.py``).

HTTP, on ``CONSTELLATION_AGGREGATOR_HOST``:``CONSTELLATION_AGGREGATOR_PORT``:

``POST /api/v1/write``  a remote-write push: 204, or 400 for a body that is not one.
``GET /ready``          200 once the store answered and pushes are accepted.
``POST /finish``        write everything held, the current partial interval included; answer
                        200 with the counts once written (500 if any record could not be), exit.
                        The counts: records ``produced``, ``written``, ``rejected``, ``failed``,
                        ``dropped`` (the writer's queue was full), ``unflushed``, ``lost`` (all
                        but written); ``requests_received`` (from k6's pushes) and
                        ``requests_written``; the store's ``retries``; ``pushes``, ``bad_pushes``;
                        with a Prometheus set, ``prometheus_sent``, ``prometheus_refused``,
                        ``prometheus_dropped``, ``prometheus_retries`` and ``prometheus_lost``
                        (refused or dropped: forward.py).

SIGTERM or SIGINT (ECS stops both containers of a task at once: StopTask, a Spot interruption)
asks the aggregator to finish once k6 has: it keeps taking pushes, k6's last one included, until
the load generator asks ``/finish`` after k6 ended, or no push came for ``PUSHES_IDLE_SECONDS`` (k6
is gone, or never ran), or ``STOP_WAIT_SECONDS`` at most, then does what ``/finish`` does. A flush takes at most ``FLUSH_SECONDS``, so that both fit in the task
definition's ``stopTimeout`` (120 s, Fargate's maximum) before ECS kills the container. The exit
status is 0 when every record produced was written, 1 when some were rejected, failed or not
written in time (each is logged), 2 for a bad configuration or an unreachable store. Logs are JSON
lines on stdout.

Environment:

``CONSTELLATION_RUN_ID``              the test run (required)
``CONSTELLATION_REGION``              the region this task runs in (required)
``CONSTELLATION_TASK_INDEX``          this task's index in its region, 0.. (required)
``CONSTELLATION_HOME_REGION``         the region of the results store (required)
``CONSTELLATION_AWS_ENDPOINT_URL``    one endpoint for every AWS service, e.g. a moto server
``CONSTELLATION_RESULTS_STORE``       ``timestream`` (default) or ``s3``
``CONSTELLATION_TIMESTREAM_DATABASE`` ``CONSTELLATION_TIMESTREAM_TABLE``  for ``timestream``
``CONSTELLATION_BUCKET``              the home bucket, for ``s3``: objects under
                                      ``runs/<run_id>/records/<region>/<task>/`` (the
                                      records, ``*.jsonl``, and their totals, ``progress.json``)
``CONSTELLATION_INTERVAL_SECONDS``    interval length (default 5); k6's
                                      ``K6_PROMETHEUS_RW_PUSH_INTERVAL`` should be shorter
                                      (e.g. 1s): a push's counts land in the interval of its time
``CONSTELLATION_AGGREGATOR_HOST``     bind address (default 127.0.0.1; in ECS awsvpc the
                                      containers of a task share localhost)
``CONSTELLATION_AGGREGATOR_PORT``     port (default 9464)
``CONSTELLATION_STOP_WAIT_SECONDS``   after a stop signal, how long to wait for ``/finish``
                                      (default 65, ``STOP_WAIT_SECONDS``)
``CONSTELLATION_MAX_REQUEST_NAMES``   request names kept apart per task (default 1000); the
                                      rest are summed into ``(other)`` (intervals.py)
``CONSTELLATION_PROMETHEUS_URL``      a remote-write endpoint to forward k6's pushes to, live,
                                      labelled ``run_id``, ``region`` and ``task`` (forward.py);
                                      ``CONSTELLATION_PROMETHEUS_AUTH`` (none, sigv4, bearer,
                                      basic), ``_REGION``, ``_USERNAME``, ``_SECRET`` for it

Locally it runs as ``python entrypoint.py`` with ``PYTHONPATH`` holding
``plugins/module_utils`` and ``files/containers/aggregator``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from http.server import HTTPServer
from threading import Event
from threading import Thread
from typing import Any
from typing import Optional

from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

import forward
import stores
from intervals import DEFAULT_MAX_REQUEST_NAMES
from intervals import METRICS
from intervals import Identity
from intervals import IntervalAggregator
from remote_write import MalformedRequest
from remote_write import parse
from remote_write import series_of

MAX_BODY_BYTES = 64 * 1024 * 1024
# After a stop signal: how long to wait for /finish (the load generator gives k6 60 s to end and
# push its last metrics), and how long the final flush may take; with the task definition's
# stopTimeout of 120 s, ECS kills the container after that.
STOP_WAIT_SECONDS = 65
FLUSH_SECONDS = 45.0
# k6 pushes every second while it runs, its graceful stop included: after a stop signal, no push
# for this long (or none ever: k6 never ran) means there is nothing more to wait for.
PUSHES_IDLE_SECONDS = 5.0
# What the final flush gives a live-metrics endpoint (forward.py) to take the pushes still waiting,
# at the same time as the results store's flush: a Prometheus that is down costs /finish this long.
PROMETHEUS_FLUSH_SECONDS = 15.0
LOG = logging.getLogger("aggregator")


class ConfigError(ValueError):
    """A missing or invalid environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    identity: Identity
    home_region: str
    endpoint_url: Optional[str]
    results_store: str
    timestream_database: str
    timestream_table: str
    bucket: str
    interval_seconds: int
    host: str
    port: int
    stop_wait_seconds: int = int(STOP_WAIT_SECONDS)
    max_request_names: int = DEFAULT_MAX_REQUEST_NAMES
    prometheus: Optional[forward.Settings] = None  # forward k6's pushes, live, there

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is required")
            return value

        identity = Identity(
            required("CONSTELLATION_RUN_ID"),
            required("CONSTELLATION_REGION"),
            str(_integer(env, "CONSTELLATION_TASK_INDEX", None, minimum=0)),
        )
        store = env.get("CONSTELLATION_RESULTS_STORE", "timestream")
        if store not in ("timestream", "s3"):
            raise ConfigError(f"CONSTELLATION_RESULTS_STORE must be timestream or s3, got {store!r}")
        return cls(
            identity=identity,
            home_region=required("CONSTELLATION_HOME_REGION"),
            endpoint_url=env.get("CONSTELLATION_AWS_ENDPOINT_URL") or None,
            results_store=store,
            timestream_database=required("CONSTELLATION_TIMESTREAM_DATABASE") if store == "timestream" else "",
            timestream_table=required("CONSTELLATION_TIMESTREAM_TABLE") if store == "timestream" else "",
            bucket=required("CONSTELLATION_BUCKET") if store == "s3" else "",
            interval_seconds=_integer(env, "CONSTELLATION_INTERVAL_SECONDS", 5, minimum=1),
            host=env.get("CONSTELLATION_AGGREGATOR_HOST", "127.0.0.1"),
            port=_integer(env, "CONSTELLATION_AGGREGATOR_PORT", 9464, minimum=0),
            stop_wait_seconds=_integer(env, "CONSTELLATION_STOP_WAIT_SECONDS", int(STOP_WAIT_SECONDS), minimum=0),
            max_request_names=_integer(env, "CONSTELLATION_MAX_REQUEST_NAMES", DEFAULT_MAX_REQUEST_NAMES, minimum=1),
            prometheus=_prometheus(env),
        )


def _prometheus(env: Mapping[str, str]) -> Optional[forward.Settings]:
    try:
        return forward.Settings.from_env(env)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _integer(env: Mapping[str, str], name: str, default: Optional[int], minimum: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        if default is None:
            raise ConfigError(f"{name} is required")
        return default
    if not text.isdigit() or int(text) < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {text!r}")
    return int(text)


def make_store(settings: Settings) -> stores.Store:
    if settings.results_store == "s3":
        s3 = stores.client("s3", settings.home_region, settings.endpoint_url)
        who = settings.identity
        return stores.S3Store(s3, settings.bucket, who.run_id, who.region, who.task)
    timestream = stores.client("timestream-write", settings.home_region, settings.endpoint_url)
    return stores.TimestreamStore(timestream, settings.timestream_database, settings.timestream_table)


class AggregatorServer(HTTPServer):
    """One thread serves every request, so the aggregation state needs no lock."""

    def __init__(
        self,
        address: tuple[str, int],
        aggregator: IntervalAggregator,
        writer: stores.Writer,
        forwarder: Optional[forward.Forwarder] = None,
    ) -> None:
        super().__init__(address, Handler)
        self.aggregator = aggregator
        self.writer = writer
        self.forwarder = forwarder
        self.finished = Event()
        self.pushes = 0
        self.last_push_at: Optional[float] = None  # time.monotonic() of the last push taken
        self.bad_pushes = 0  # answered 400: not remote-write, or past a limit
        self.push_seconds = 0.0

    def flush(self) -> dict[str, Any]:
        """Write every record held and wait for the store (and the live-metrics endpoint); the counts so far."""
        if self.forwarder:
            self.forwarder.stop_taking(PROMETHEUS_FLUSH_SECONDS)
        self.writer.submit(self.aggregator.close_all())
        if not self.writer.drain(FLUSH_SECONDS):
            LOG.error("flush_timed_out", extra={"fields": {"seconds": FLUSH_SECONDS, **self.writer.summary()}})
        forwarded = self.forwarder.close(PROMETHEUS_FLUSH_SECONDS) if self.forwarder else {}
        mean_ms = 1000 * self.push_seconds / self.pushes if self.pushes else 0.0
        return {
            **self.writer.summary(),
            "requests_received": self.aggregator.requests_received,
            "pushes": self.pushes,
            "bad_pushes": self.bad_pushes,
            "folded_request_names": self.aggregator.folded_request_names,
            "mean_push_ms": round(mean_ms, 3),
            **forwarded,
        }


class Handler(BaseHTTPRequestHandler):
    server: AggregatorServer
    # One thread serves every request: a client that stalls mid-request is cut off after this
    # long, not left to hold up k6's pushes and /finish.
    timeout = 10

    def do_GET(self) -> None:
        if self.path == "/ready":
            self._reply(HTTPStatus.OK, {"ready": True})
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {self.path}"})

    def do_POST(self) -> None:
        if self.path == "/api/v1/write":
            self._push()
        elif self.path == "/finish":
            self._finish()
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {self.path}"})

    def _push(self) -> None:
        body = self._body()
        if body is None:
            return
        started = time.perf_counter()
        try:
            request = parse(body)
            pushed = series_of(request, METRICS)
        except MalformedRequest as error:
            self.server.bad_pushes += 1
            LOG.warning("bad_push", extra={"fields": {"error": str(error), "bytes": len(body)}})
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        self.server.writer.submit(self.server.aggregator.add(pushed))
        if self.server.forwarder:
            self.server.forwarder.submit(request, len(body))
        self.server.pushes += 1
        self.server.last_push_at = time.monotonic()
        self.server.push_seconds += time.perf_counter() - started
        self._reply(HTTPStatus.NO_CONTENT)

    def _finish(self) -> None:
        summary = self.server.flush()
        lost = summary["produced"] - summary["written"]
        self._reply(HTTPStatus.INTERNAL_SERVER_ERROR if lost else HTTPStatus.OK, summary)
        self.server.finished.set()

    def _body(self) -> Optional[bytes]:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length header is required"})
            return None
        if int(length) > MAX_BODY_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"the body exceeds {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(int(length))

    def _reply(self, status: HTTPStatus, payload: Optional[dict[str, Any]] = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's access log: the aggregator logs JSON lines of its own."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def serve(settings: Settings, store: stores.Store) -> int:
    """Serve until /finish or a signal, write everything held, and return the exit status."""
    writer = stores.Writer(store, retries_from=0)  # the store's check's retries count too
    aggregator = IntervalAggregator(settings.identity, settings.interval_seconds * 1000, settings.max_request_names)
    forwarder = None
    if settings.prometheus:
        forwarder = forward.Forwarder(settings.prometheus, vars(settings.identity))
        LOG.info("forwarding", extra={"fields": {"prometheus": settings.prometheus.url}})
    server = AggregatorServer((settings.host, settings.port), aggregator, writer, forwarder)
    stop_asked = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop_asked.set())
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True).start()
    LOG.info("listening", extra={"fields": {"host": settings.host, "port": server.server_address[1]}})
    # Polled rather than waited on: a signal handler that sets an Event the main thread is blocked
    # in can deadlock on the Event's internal lock.
    give_up_at: Optional[float] = None
    while not server.finished.is_set():
        if stop_asked.is_set() and give_up_at is None:
            LOG.info("stop_asked", extra={"fields": {"waiting_for_finish_s": settings.stop_wait_seconds}})
            give_up_at = time.monotonic() + settings.stop_wait_seconds
        if give_up_at is not None and time.monotonic() >= give_up_at:
            LOG.warning("finish_not_asked", extra={"fields": {"waited_s": settings.stop_wait_seconds}})
            break
        last_push_at = server.last_push_at
        if give_up_at is not None and (last_push_at is None or time.monotonic() - last_push_at >= PUSHES_IDLE_SECONDS):
            LOG.info("pushes_ended", extra={"fields": {"pushes": server.pushes, "idle_s": PUSHES_IDLE_SECONDS}})
            break
        time.sleep(0.1)
    # Finishing now: a SIGTERM from here on (ECS stops the sidecar once the load generator exited)
    # asks for nothing more, and must not turn this exit into 143 while Python shuts down.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    server.shutdown()  # lets a push in progress complete, so nothing else touches the aggregator
    server.server_close()
    summary = server.flush()
    writer.stop(timeout=1.0)
    LOG.info("summary", extra={"fields": summary})
    return 0 if summary["written"] == summary["produced"] else 1


def main() -> int:
    configure_logging()
    try:
        settings = Settings.from_env(os.environ)
        store = make_store(settings)
        store.check()
    except ConfigError as error:
        LOG.error("bad_configuration", extra={"fields": {"error": str(error)}})
        return 2
    except (ClientError, BotoCoreError) as error:
        LOG.error("store_unreachable", extra={"fields": {"error": str(error)}})
        return 2
    LOG.info("store_ok", extra={"fields": {"store": settings.results_store, **vars(settings.identity)}})
    return serve(settings, store)


if __name__ == "__main__":
    sys.exit(main())
