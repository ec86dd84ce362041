"""Forward k6's pushes, live, to the user's Prometheus (``constellation_prometheus_remote_write_url``).

The aggregator receives k6's remote-write pushes anyway; with a Prometheus set, each push it took
is also sent on, unchanged but for three labels every series gains (``run_id``, ``region``,
``task``: which run and task it comes from), to that endpoint, from a thread of its own. k6's
metric names and native histograms are kept as they are.

Nothing here may cost the results store anything: the HTTP thread only hands a push over
(:meth:`Forwarder.submit` never waits), and what waits for Prometheus is held in a bounded buffer
(``MAX_QUEUED_PUSHES`` pushes, ``MAX_QUEUED_BYTES`` of k6's bodies). Since each of k6's pushes
carries cumulative values, a dropped push costs Prometheus a point of resolution, not a total: on
overflow the oldest waiting push is dropped, so the newest (the totals) is kept. Every push ends
counted as one of ``sent``, ``refused`` (a 4xx answer other than 429: a bad request or bad
credentials, logged) or ``dropped`` (the buffer was full, or the endpoint still did not take it
when the aggregator finished); ``retries`` counts the attempts after a push's first (429, 5xx, no
connection). The counts reach the run's accounting and its report.

Authentication (``CONSTELLATION_PROMETHEUS_AUTH``):

``none``    no header
``sigv4``   AWS Signature Version 4 for Amazon Managed Service for Prometheus (service ``aps``,
            ``CONSTELLATION_PROMETHEUS_REGION``), with the task role's credentials (botocore)
``bearer``  ``Authorization: Bearer <CONSTELLATION_PROMETHEUS_SECRET>``
``basic``   ``CONSTELLATION_PROMETHEUS_USERNAME`` and the secret as the password

The secret reaches the container as an ECS secret (the task definition names its ARN only).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Optional
from typing import Protocol

import botocore.session
import cramjam
from botocore.auth import SigV4Auth as BotocoreSigV4Auth
from botocore.awsrequest import AWSRequest

import remote_pb2

# One minute of k6's pushes (one a second), and a bound on what they may weigh: k6's bodies are
# kilobytes, or a few megabytes with thousands of request names; the container has 512 MiB.
MAX_QUEUED_PUSHES = 60
MAX_QUEUED_BYTES = 64 * 1024 * 1024
SEND_TIMEOUT_SECONDS = 5.0
RETRY_DELAYS_SECONDS = (0.25, 0.5, 1.0, 2.0, 4.0)  # then 4 s between attempts
MAX_LOGGED_ERROR_CHARS = 300
AUTH_KINDS = ("none", "sigv4", "bearer", "basic")
LOG = logging.getLogger("aggregator")


class Auth(Protocol):
    def headers(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers to send ``body`` to ``url`` with (``headers`` and the authentication's)."""


class NoAuth:
    def headers(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        return dict(headers)


@dataclass(frozen=True)
class StaticAuth:
    """A bearer token or basic credentials: the same ``Authorization`` header on every push."""

    authorization: str

    @classmethod
    def bearer(cls, token: str) -> StaticAuth:
        return cls(f"Bearer {token}")

    @classmethod
    def basic(cls, username: str, password: str) -> StaticAuth:
        return cls("Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii"))

    def headers(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        return {**headers, "Authorization": self.authorization}

    def __repr__(self) -> str:
        return "StaticAuth(<secret>)"


class SigV4Auth:
    """Signs each push for Amazon Managed Service for Prometheus with the task's credentials."""

    def __init__(self, region: str, credentials: Any = None) -> None:
        self._region = region
        self._credentials = credentials or botocore.session.get_session().get_credentials()
        if self._credentials is None:
            raise ValueError("sigv4: no AWS credentials found (the task role's, in ECS)")

    def headers(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        # Refreshable credentials (the task role's) are renewed here when they near their expiry.
        BotocoreSigV4Auth(self._credentials.get_frozen_credentials(), "aps", self._region).add_auth(request)
        return dict(request.headers.items())


@dataclass(frozen=True)
class Settings:
    url: str
    auth: Auth

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Optional[Settings]:
        """The forwarding the environment asks for; None without ``CONSTELLATION_PROMETHEUS_URL``.

        Raises ValueError naming the variable that is missing or wrong."""
        url = env.get("CONSTELLATION_PROMETHEUS_URL", "").strip()
        if not url:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"CONSTELLATION_PROMETHEUS_URL must be an http:// or https:// URL, got {url!r}")
        if parts.username or parts.password:
            raise ValueError("CONSTELLATION_PROMETHEUS_URL must not hold credentials: give them as its secret")
        kind = env.get("CONSTELLATION_PROMETHEUS_AUTH", "none").strip() or "none"
        if kind not in AUTH_KINDS:
            raise ValueError(f"CONSTELLATION_PROMETHEUS_AUTH must be one of {', '.join(AUTH_KINDS)}, got {kind!r}")
        secret = env.get("CONSTELLATION_PROMETHEUS_SECRET", "")
        if kind in ("bearer", "basic") and not secret:
            raise ValueError(f"CONSTELLATION_PROMETHEUS_SECRET is required for CONSTELLATION_PROMETHEUS_AUTH={kind}")
        if kind == "sigv4":
            region = env.get("CONSTELLATION_PROMETHEUS_REGION", "").strip()
            if not region:
                raise ValueError("CONSTELLATION_PROMETHEUS_REGION is required for CONSTELLATION_PROMETHEUS_AUTH=sigv4")
            return cls(url, SigV4Auth(region))
        if kind == "bearer":
            return cls(url, StaticAuth.bearer(secret))
        if kind == "basic":
            username = env.get("CONSTELLATION_PROMETHEUS_USERNAME", "").strip()
            if not username:
                raise ValueError("CONSTELLATION_PROMETHEUS_USERNAME is required for CONSTELLATION_PROMETHEUS_AUTH=basic")
            return cls(url, StaticAuth.basic(username, secret))
        return cls(url, NoAuth())


def with_labels(request: remote_pb2.WriteRequest, labels: Mapping[str, str]) -> remote_pb2.WriteRequest:
    """``request`` with ``labels`` on every series (replacing any of the same name), each series' labels sorted by name as
    remote write requires; changed in place."""
    for series in request.timeseries:
        pairs = sorted([(label.name, label.value) for label in series.labels if label.name not in labels] + list(labels.items()))
        del series.labels[:]
        series.labels.extend(remote_pb2.Label(name=name, value=value) for name, value in pairs)
    return request


@dataclass
class _Push:
    request: remote_pb2.WriteRequest
    size: int  # the bytes of k6's body, what the buffer's bound counts


class Forwarder:
    """Sends each push handed to :meth:`submit` to one remote-write endpoint, in order, from its own thread."""

    def __init__(
        self,
        settings: Settings,
        labels: Mapping[str, str],
        max_queued_pushes: int = MAX_QUEUED_PUSHES,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        retry_delays: tuple[float, ...] = RETRY_DELAYS_SECONDS,
    ) -> None:
        self._settings = settings
        self._labels = dict(labels)
        self._max_pushes = max_queued_pushes
        self._max_bytes = max_queued_bytes
        self._retry_delays = retry_delays
        self._queue: deque[_Push] = deque()
        self._queued_bytes = 0
        self._lock = threading.Condition()
        self._closing = False
        self._give_up_at: Optional[float] = None
        self.counts = {"sent": 0, "refused": 0, "dropped": 0, "retries": 0}
        self._thread = threading.Thread(target=self._run, name="prometheus", daemon=True)
        self._thread.start()

    def submit(self, request: remote_pb2.WriteRequest, size: int) -> None:
        """Queue a push (which the caller no longer touches); drops the oldest waiting when the buffer is full."""
        with self._lock:
            if self._closing:
                self.counts["dropped"] += 1
                return
            self._queue.append(_Push(request, size))
            self._queued_bytes += size
            while len(self._queue) > self._max_pushes or (self._queued_bytes > self._max_bytes and len(self._queue) > 1):
                oldest = self._queue.popleft()
                self._queued_bytes -= oldest.size
                self.counts["dropped"] += 1
            self._lock.notify()

    def stop_taking(self, timeout: float) -> None:
        """Take no more pushes; send those waiting for at most ``timeout`` seconds from now (once: later calls keep the
        first deadline)."""
        with self._lock:
            if not self._closing:
                self._closing = True
                self._give_up_at = time.monotonic() + timeout
            self._lock.notify()

    def close(self, timeout: float) -> dict[str, int]:
        """:meth:`stop_taking`, wait for the sending to end, count what was not sent as dropped; the counts."""
        self.stop_taking(timeout)
        give_up_at = self._give_up_at or time.monotonic()
        self._thread.join(max(0.0, give_up_at - time.monotonic()) + SEND_TIMEOUT_SECONDS + 1.0)
        with self._lock:
            self.counts["dropped"] += len(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            return self.summary()

    def summary(self) -> dict[str, int]:
        """The counts, and ``lost``: the pushes the endpoint did not take (refused or dropped)."""
        counts = {f"prometheus_{name}": count for name, count in self.counts.items()}
        return counts | {"prometheus_lost": self.counts["refused"] + self.counts["dropped"]}

    def _next(self) -> Optional[_Push]:
        with self._lock:
            while not self._queue or self._out_of_time():
                if self._closing:
                    return None
                self._lock.wait(0.5)
            push = self._queue.popleft()
            self._queued_bytes -= push.size
            return push

    def _out_of_time(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _run(self) -> None:
        while True:
            push = self._next()
            if push is None:
                return
            body = bytes(cramjam.snappy.compress_raw(with_labels(push.request, self._labels).SerializeToString()))
            outcome = self._send_until_taken(body)
            with self._lock:
                self.counts[outcome] += 1

    def _send_until_taken(self, body: bytes) -> str:
        """``sent``, ``refused``, or ``dropped`` when the aggregator finished before the endpoint took it."""
        attempt = 0
        while True:
            error = self._send(body)
            if error is None:
                return "sent"
            retry, detail = error
            if not retry:
                LOG.warning("prometheus_refused", extra={"fields": {"error": detail}})
                return "refused"
            delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
            if attempt == 0:
                LOG.warning("prometheus_unavailable", extra={"fields": {"error": detail, "retrying": True}})
            attempt += 1
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if self._out_of_time():
                    return "dropped"
                time.sleep(min(0.05, delay))
            if self._out_of_time():
                return "dropped"
            with self._lock:
                self.counts["retries"] += 1

    def _send(self, body: bytes) -> Optional[tuple[bool, str]]:
        """None once the endpoint took ``body``; else whether to try again, and what went wrong."""
        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": "constellation-aggregator",
        }
        request = urllib.request.Request(
            self._settings.url, data=body, method="POST", headers=self._settings.auth.headers(self._settings.url, body, headers)
        )
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as answer:  # nosec: the user's endpoint
                answer.read()
            return None
        except urllib.error.HTTPError as error:
            text = error.read(MAX_LOGGED_ERROR_CHARS).decode("utf-8", "replace").strip()
            return error.code == 429 or error.code >= 500, f"HTTP {error.code}: {text}"
        except (urllib.error.URLError, OSError) as error:
            return True, str(getattr(error, "reason", error))
