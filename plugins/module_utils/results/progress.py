# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Requests and errors so far of a run, per region: cheap enough to read every 30 s of a long test.

Counting every interval record on every poll would read (S3) or scan (Timestream) the whole run
so far each time, so each store answers in its own way:

S3
    Beside its records (``runs/<run_id>/records/<region>/<task>/*.jsonl``) each task's aggregator
    keeps ``progress.json``, a :class:`TaskProgress`: the totals of the records it has written so
    far, rewritten after the records it counts (at most every few seconds, and on its final
    flush). Reading progress lists the run's regions and their tasks (``Delimiter=/``: a call per
    region) and gets one small object per task, in parallel. A task without the object yet (it
    has written no records) is not counted. Readers of records skip the object: records are the
    keys :func:`is_record_key` accepts.
Timestream
    One aggregate query over the run's ``requests`` records, every page of its answer. Nothing
    extra is written.

The aggregator ships this file as a top-level module (it writes the progress object), so it
imports nothing from Ansible and takes plain boto3 clients; the modules wrap theirs with a retry
decorator (``orchestrator_state.RetryingClient``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import fields
from typing import Any
from typing import Optional

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # The modules report a missing botocore; the aggregator always has it.

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
PROGRESS_OBJECT = "progress.json"
RECORDS_SUFFIX = ".jsonl"
# Progress objects read at once (hundreds one after the other would take seconds): as many as
# a botocore client keeps connections by default.
READ_THREADS = 10


class ProgressError(ValueError):
    """Progress that cannot be read; the message says what is wrong."""


def validate_run_id(run_id: Any, option: str = "run_id") -> str:
    """Return ``run_id`` if it is a valid run id; it goes into S3 keys, ECS's startedBy and SQL.

    The one rule for run ids: every module, the orchestrator and the data plane check them here.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise ProgressError(
            f"{option} {run_id!r} is not a run id: 1 to 64 letters, digits, hyphens and underscores, "
            "starting with a letter or digit"
        )
    return run_id


# A run's objects in the home bucket, in one place:
#   runs/<run id>/test.tar                         the test, a k6 archive (run_test keeps it, every task runs it)
#   runs/<run id>/run.json                         the manifest, the run as planned (visualize reads it)
#   runs/<run id>/records/<region>/<task>/*.jsonl  the S3 results store's records, and each task's
#                                                  progress.json beside them


def run_prefix(run_id: str) -> str:
    return f"runs/{validate_run_id(run_id)}/"


def script_key(run_id: str) -> str:
    """Where a run's test is in the home bucket: the k6 archive run_test keeps and every task runs."""
    return run_prefix(run_id) + "test.tar"


def manifest_key(run_id: str) -> str:
    """Where run_test keeps the run as it was planned (visualize shows it)."""
    return run_prefix(run_id) + "run.json"


def records_prefix(run_id: str) -> str:
    """Where the S3 store keeps the run's records and progress objects."""
    return run_prefix(run_id) + "records/"


def task_records_prefix(run_id: str, region: str, task: Any) -> str:
    """Where one task's aggregator writes its records and its progress object."""
    return f"{records_prefix(run_id)}{region}/{task}/"


def run_objects(run_id: str) -> dict[str, str]:
    """The keys of a run's objects, for the playbooks (the upload, the task role's policy)."""
    return {"script": script_key(run_id), "manifest": manifest_key(run_id), "records": records_prefix(run_id)}


def is_record_key(key: str) -> bool:
    """Whether an object under a run's records prefix holds interval records (not progress)."""
    return key.endswith(RECORDS_SUFFIX)


@dataclass
class TaskProgress:
    """What one task's records written so far add up to: the content of its ``progress.json``."""

    requests: int = 0
    failures: int = 0
    iterations: int = 0
    updated_ms: int = 0  # when the object was written, epoch milliseconds

    def count(self, records: Iterable[Any]) -> None:
        """Add interval records (``records.RequestRecord`` and ``records.TaskRecord``) to the totals."""
        for record in records:
            if record.KIND == "requests":
                self.requests += record.requests
                self.failures += record.failures
            elif record.KIND == "task":
                self.iterations += record.iterations

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskProgress:
        """The progress :meth:`to_json` wrote; fields it does not know are ignored."""
        try:
            values = json.loads(text)
        except ValueError as error:
            raise ProgressError(f"not JSON: {error}") from None
        if not isinstance(values, dict):
            raise ProgressError(f"a JSON object was expected, got {type(values).__name__}")
        counts = {}
        for item in fields(cls):
            value = values.get(item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ProgressError(f"{item.name} must be a count (an integer >= 0), got {value!r}")
            counts[item.name] = value
        return cls(**counts)


@dataclass
class RegionProgress:
    """Requests and failures so far of one region's tasks, and how many tasks they come from."""

    requests: int = 0
    failures: int = 0
    tasks_reporting: int = 0

    def add(self, other: RegionProgress) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.tasks_reporting += other.tasks_reporting

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": self.failures / self.requests if self.requests else 0.0,
            "tasks_reporting": self.tasks_reporting,
        }


def summary(regions: Mapping[str, RegionProgress]) -> dict[str, Any]:
    """Every region's progress and the run's totals, as run_progress_info returns them."""
    totals = RegionProgress()
    for region in regions.values():
        totals.add(region)
    return {
        "regions": {name: region.as_dict() for name, region in sorted(regions.items())},
        "totals": totals.as_dict(),
    }


# ---- S3: the progress objects of the run's tasks.


def read_s3_progress(s3, bucket: str, run_id: str) -> dict[str, RegionProgress]:
    """Every region with records in the bucket, and what the progress objects of its tasks add up to."""
    prefix = records_prefix(run_id)
    tasks = [task for region in _folders(s3, bucket, prefix) for task in _folders(s3, bucket, region)]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        found = list(pool.map(lambda task: _task_progress(s3, bucket, task + PROGRESS_OBJECT), tasks))
    regions: dict[str, RegionProgress] = {}
    for task, totals in zip(tasks, found):
        region = regions.setdefault(task[len(prefix) :].split("/", 1)[0], RegionProgress())
        if totals is not None:
            region.add(RegionProgress(totals.requests, totals.failures, tasks_reporting=1))
    return regions


def _folders(s3, bucket: str, prefix: str) -> list[str]:
    """The key prefixes one level below ``prefix``, each ending in ``/``."""
    request = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    folders: list[str] = []
    while True:
        response = s3.list_objects_v2(**request)
        folders.extend(item["Prefix"] for item in response.get("CommonPrefixes", []))
        if not response.get("IsTruncated"):
            return folders
        request["ContinuationToken"] = response["NextContinuationToken"]


def _task_progress(s3, bucket: str, key: str) -> Optional[TaskProgress]:
    """The task's progress object, or None if it has not written one yet."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    try:
        return TaskProgress.from_json(body)
    except ProgressError as error:
        raise ProgressError(f"s3://{bucket}/{key}: {error}") from None


# ---- Timestream: one aggregate query.


# Timestream bills the bytes a query scans (10 MB at least) and prunes by time: a query for one
# run reads only from this long before its decided start. The records carry the tasks' clocks,
# which may be a little off the orchestrator's.
RECORDS_LEAD_MS = 15 * 60 * 1000


def time_condition(start_at_ms: Optional[int]) -> str:
    """The SQL condition keeping a query to the time of a run that starts at ``start_at_ms``.

    ``TRUE`` while the start is not decided: no task has started then, but the records of an
    earlier attempt of the same run id may be there, wherever they are in time.
    """
    if start_at_ms is None:
        return "TRUE"
    if isinstance(start_at_ms, bool) or not isinstance(start_at_ms, int) or start_at_ms < 0:
        raise ProgressError(f"start_at {start_at_ms!r} is not a time in epoch milliseconds")
    return f"time >= from_milliseconds({start_at_ms - RECORDS_LEAD_MS})"


def timestream_query(database: str, table: str, run_id: str, start_at_ms: Optional[int] = None) -> str:
    """The query that sums the run's request records by region."""
    return (
        "SELECT region, SUM(requests) AS requests, SUM(failures) AS failures, COUNT(DISTINCT task) AS tasks"
        f" FROM {sql_identifier(database)}.{sql_identifier(table)}"
        f" WHERE run_id = '{validate_run_id(run_id)}' AND measure_name = 'requests'"
        f" AND {time_condition(start_at_ms)}"
        " GROUP BY region"
    )


def read_timestream_progress(
    client, database: str, table: str, run_id: str, start_at_ms: Optional[int] = None
) -> dict[str, RegionProgress]:
    """Every region with request records in the table, and their sums (every page of the answer).

    ``client`` is a ``timestream-query`` client; ``start_at_ms`` the run's decided start, if any.
    """
    regions: dict[str, RegionProgress] = {}
    for columns, data in timestream_rows(client, timestream_query(database, table, run_id, start_at_ms)):
        values = dict(zip(columns, (datum.get("ScalarValue") for datum in data)))
        region = regions.setdefault(values["region"], RegionProgress())
        region.add(RegionProgress(_count(values["requests"]), _count(values["failures"]), _count(values["tasks"])))
    return regions


# Timestream queries, for the progress here and the report (report_data): one reader of their
# answers, one quoting of identifiers.


def timestream_rows(client, query: str) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """The column names and the data of every row of a query's answer, through every page.

    A query still running answers with pages of no rows and a NextToken: the paginator follows
    them to the end. ``client`` is a ``timestream-query`` client.
    """
    for page in client.get_paginator("query").paginate(QueryString=query):
        columns = [column["Name"] for column in page.get("ColumnInfo", [])]
        for row in page.get("Rows", []):
            yield columns, row["Data"]


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _count(text: Optional[str]) -> int:
    return int(text) if text else 0
