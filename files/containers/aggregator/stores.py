"""Write interval records to the results store: Timestream or S3, on a thread of their own.

Retries are botocore's "standard" mode: jittered exponential backoff (capped at 20 s a wait) on
throttling (``ThrottlingException``, ...), 5xx answers (``InternalServerException``) and
connection errors, ``MAX_ATTEMPTS`` attempts in all; each attempt after the first is counted
(``retries`` in the writer's summary). A batch that still fails, and every record Timestream
rejects, is logged record by record and counted: nothing is dropped silently. The writer holds at
most ``MAX_QUEUED_RECORDS`` records waiting for a slow store; a batch past that is dropped, logged
and counted, so that a store that stopped answering costs records, not the task's memory.

The S3 store also keeps the task's running totals (``progress.json``, see progress.py) beside its
records, so that a run's progress is a few small reads rather than every record.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from typing import Optional
from typing import Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from results.progress import PROGRESS_OBJECT
from results.progress import TaskProgress
from results.progress import task_records_prefix
from results.records import Record
from results.records import RequestRecord
from results.records import to_json
from results.records import to_timestream

MAX_ATTEMPTS = 8
# About 10 minutes of a task's records at 1,000 request names and 5 s intervals (a record holds
# a histogram of at most a few kilobytes): far more than a store that answers ever lets pile up.
MAX_QUEUED_RECORDS = 100_000
TIMESTREAM_BATCH = 100  # the most records one WriteRecords call takes
# The S3 store rewrites a task's progress.json at most this often, and on the final flush: current
# enough for a poll every 30 s, and half as many PUTs as the records of 5 s intervals.
PROGRESS_SECONDS = 10.0

# The task role is granted its run's records when run_test starts the run, and rewritten when
# another run of the deployment starts or ends (run_grants); IAM applies a change within seconds.
# A denied write is tried again for this long before its records count as lost.
GRANT_PROPAGATION_SECONDS = 60.0
GRANT_RETRY_DELAY_SECONDS = 2.0

LOG = logging.getLogger("aggregator")


def until_granted(call: Any, **request: Any) -> Any:
    """``call(**request)``, again while AWS denies it, for at most GRANT_PROPAGATION_SECONDS."""
    deadline = time.monotonic() + GRANT_PROPAGATION_SECONDS
    while True:
        try:
            return call(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("AccessDenied", "AccessDeniedException"):
                raise
            if time.monotonic() + GRANT_RETRY_DELAY_SECONDS > deadline:
                raise
            LOG.warning("access_denied_retry", extra={"fields": {"error": str(error)}})
            RETRIES.count()
            time.sleep(GRANT_RETRY_DELAY_SECONDS)


class RetryCount:
    """Calls to the store tried again: botocore's retries (every attempt after a call's first, seen
    on ``request-created``) and a denied write tried again (:func:`until_granted`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0

    def count(self) -> None:
        with self._lock:
            self.retries += 1

    def watch(self, aws_client: Any) -> Any:
        """Count ``aws_client``'s retries from now on; the client."""
        aws_client.meta.events.register("request-created", self._on_request)
        return aws_client

    def _on_request(self, request: Any, **_kwargs: Any) -> None:
        if getattr(request, "context", {}).get("retries", {}).get("attempt", 1) > 1:
            self.count()


RETRIES = RetryCount()  # the aggregator's one store: one count


@dataclass
class Outcome:
    """What became of records handed to a store: records, and the requests in the written ones."""

    written: int = 0
    rejected: int = 0
    failed: int = 0
    requests_written: int = 0

    def add(self, other: Outcome) -> None:
        self.written += other.written
        self.rejected += other.rejected
        self.failed += other.failed
        self.requests_written += other.requests_written


def requests_in(records: list[Record]) -> int:
    """The requests the request records among ``records`` count."""
    return sum(record.requests for record in records if isinstance(record, RequestRecord))


class Store(Protocol):
    def check(self) -> None:
        """Raise a ClientError or BotoCoreError when the store cannot be written to."""

    def write(self, records: list[Record]) -> Outcome: ...

    def save_progress(self) -> None:
        """Bring the store's running totals (if it keeps any) up to the records written so far."""


def client(service: str, region: str, endpoint_url: Optional[str]) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS})
    return RETRIES.watch(boto3.client(service, region_name=region, endpoint_url=endpoint_url, config=config))


class TimestreamStore:
    """Multi-measure records, at most ``TIMESTREAM_BATCH`` per ``WriteRecords`` call."""

    def __init__(self, timestream_write: Any, database: str, table: str) -> None:
        self._client = timestream_write
        self._database = database
        self._table = table

    def check(self) -> None:
        self._client.describe_table(DatabaseName=self._database, TableName=self._table)

    def write(self, records: list[Record]) -> Outcome:
        outcome = Outcome()
        for first in range(0, len(records), TIMESTREAM_BATCH):
            outcome.add(self._write_batch(records[first : first + TIMESTREAM_BATCH]))
        return outcome

    def save_progress(self) -> None:
        """Nothing to save: Timestream's progress is a query over the records (progress.py)."""

    def _write_batch(self, batch: list[Record]) -> Outcome:
        try:
            self._client.write_records(
                DatabaseName=self._database, TableName=self._table, Records=[to_timestream(r) for r in batch]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "RejectedRecordsException":
                return _rejected(batch, error.response.get("RejectedRecords", []))
            return _failed(batch, error)
        except BotoCoreError as error:
            return _failed(batch, error)
        return Outcome(written=len(batch), requests_written=requests_in(batch))


class S3Store:
    """One JSON-lines object per write, under ``runs/<run_id>/records/<region>/<task>/``, and there
    too ``progress.json``: the totals of the records written so far, written after them."""

    def __init__(self, s3: Any, bucket: str, run_id: str, region: str, task: str) -> None:
        self._client = s3
        self._bucket = bucket
        self._prefix = task_records_prefix(run_id, region, task)
        self._progress = TaskProgress()
        self._progress_saved = True  # nothing to save before the first records
        self._progress_saved_at: Optional[float] = None  # time.monotonic() of the last save

    def check(self) -> None:
        # The one permission the task role has on the bucket is PutObject under this prefix, so
        # the check is a write: the (empty) progress of this task.
        self._put_progress()

    def write(self, records: list[Record]) -> Outcome:
        # The first interval's start orders the objects in time; the random part keeps a restarted
        # aggregator from overwriting an object of its predecessor.
        key = f"{self._prefix}{records[0].start_ms:013d}-{uuid.uuid4().hex[:12]}.jsonl"
        body = "".join(to_json(record) + "\n" for record in records).encode()
        try:
            until_granted(self._client.put_object, Bucket=self._bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        except (ClientError, BotoCoreError) as error:
            return _failed(records, error)
        self._progress.count(records)
        self._progress_saved = False
        if self._progress_saved_at is None or time.monotonic() - self._progress_saved_at >= PROGRESS_SECONDS:
            self.save_progress()
        return Outcome(written=len(records), requests_written=requests_in(records))

    def save_progress(self) -> None:
        """Overwrite progress.json with the totals of the records written so far, unless it has them.

        Progress is a convenience: a failed write is logged, and the next write of records tries again.
        """
        if self._progress_saved:
            return
        self._progress.updated_ms = int(time.time() * 1000)
        try:
            self._put_progress()
        except (ClientError, BotoCoreError) as error:
            LOG.warning("progress_not_written", extra={"fields": {"error": str(error)}})
            return
        self._progress_saved = True
        self._progress_saved_at = time.monotonic()

    def _put_progress(self) -> None:
        until_granted(
            self._client.put_object,
            Bucket=self._bucket,
            Key=self._prefix + PROGRESS_OBJECT,
            Body=self._progress.to_json().encode(),
            ContentType="application/json",
        )


class Writer:
    """Hands records to a store on its own thread, so a slow or throttled store never stalls k6."""

    def __init__(self, store: Store, max_queued_records: int = MAX_QUEUED_RECORDS, retries_from: Optional[int] = None) -> None:
        """``retries_from``: the store's retries counted before (the summary's are those after); the count now if None."""
        self.store = store
        self.produced = 0
        self.dropped = 0
        self.outcome = Outcome()
        self._max_queued = max_queued_records
        self._queued = 0  # records submitted and not yet taken by the writer thread
        self._queued_lock = threading.Lock()
        self._retries_before = RETRIES.retries if retries_from is None else retries_from
        self._queue: queue.Queue[Optional[list[Record]]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def submit(self, records: list[Record]) -> None:
        """Queue ``records`` for the store, or drop them (counted, logged) when the queue is full."""
        if not records:
            return
        self.produced += len(records)
        with self._queued_lock:
            full = self._queued + len(records) > self._max_queued
            if not full:
                self._queued += len(records)
        if full:
            self.dropped += len(records)
            LOG.error(
                "records_dropped",
                extra={"fields": {"records": len(records), "requests": requests_in(records), "queued": self._queued,
                                  "reason": "the results store is not keeping up"}},
            )
            return
        self._queue.put(records)

    def drain(self, timeout: Optional[float] = None) -> bool:
        """Return True once everything submitted so far has been written (or counted as lost), and
        the store's running totals cover it; False if ``timeout`` seconds passed first (what is not
        written by then is ``unflushed`` in the summary: the process is about to be killed)."""
        with self._queue.all_tasks_done:
            if not self._queue.all_tasks_done.wait_for(lambda: not self._queue.unfinished_tasks, timeout):
                return False
        # The writer thread is idle now, and stays so: pushes and /finish share the one HTTP thread,
        # and the final flush comes after it stopped.
        self.store.save_progress()
        return True

    def stop(self, timeout: Optional[float] = None) -> None:
        """End the writer thread once it wrote what it holds, or leave it after ``timeout`` (a daemon)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def summary(self) -> dict[str, int]:
        settled = self.outcome.written + self.outcome.rejected + self.outcome.failed + self.dropped
        return {
            "produced": self.produced,
            **vars(self.outcome),
            "dropped": self.dropped,
            "unflushed": self.produced - settled,
            "lost": self.produced - self.outcome.written,
            "retries": RETRIES.retries - self._retries_before,
        }

    def _run(self) -> None:
        while True:
            records = self._queue.get()
            try:
                if records is None:
                    return
                with self._queued_lock:
                    self._queued -= len(records)
                self.outcome.add(self.store.write(records))
            finally:
                self._queue.task_done()


def _rejected(batch: list[Record], rejections: list[dict[str, Any]]) -> Outcome:
    """Timestream wrote the batch except the records it names: log each one with its reason."""
    for rejection in rejections:
        index = rejection.get("RecordIndex", -1)
        record = batch[index] if 0 <= index < len(batch) else None
        LOG.error(
            "record_rejected",
            extra={"fields": {"reason": rejection.get("Reason"), "record": _describe(record)}},
        )
    rejected = {rejection.get("RecordIndex", -1) for rejection in rejections}
    kept = [record for index, record in enumerate(batch) if index not in rejected]
    return Outcome(written=len(kept), rejected=len(batch) - len(kept), requests_written=requests_in(kept))


def _failed(batch: list[Record], error: Exception) -> Outcome:
    for record in batch:
        LOG.error("record_not_written", extra={"fields": {"error": str(error), "record": _describe(record)}})
    return Outcome(failed=len(batch))


def _describe(record: Optional[Record]) -> Optional[dict[str, Any]]:
    """Enough of a record to find it again: its kind, dimensions and interval start."""
    if record is None:
        return None
    return {
        "kind": record.KIND,
        "start_ms": record.start_ms,
        **{name: getattr(record, name) for name in record.DIMENSIONS},
    }
