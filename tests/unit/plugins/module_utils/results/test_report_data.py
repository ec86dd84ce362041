"""The report's data: records read back from S3 and Timestream, and summary.json built from them."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import random
from datetime import datetime
from datetime import timezone
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

REPO = Path(__file__).resolve().parents[5]

from ansible_collections.constellation.loadtest.plugins.module_utils.results import accounting
from ansible_collections.constellation.loadtest.plugins.module_utils.run import exit_codes
from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_data
from ansible_collections.constellation.loadtest.plugins.module_utils.run.orchestrator_state import iso8601_utc
from ansible_collections.constellation.loadtest.plugins.module_utils.results.histogram import Histogram
from ansible_collections.constellation.loadtest.plugins.module_utils.results.histogram import merge_all
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import RequestRecord
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import TaskRecord
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import to_json
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import to_timestream
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_data import RecordsError
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_data import build_summary
from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import parse_all

RUN_ID = "nightly-42"
T0 = 1764320000000  # aligned to the 5 s intervals
INTERVAL = 5000
REGIONS = {"us-east-2": 2, "eu-west-1": 1}
PLAN = {"us-east-2": {"vus": 20, "tasks": 2}, "eu-west-1": {"vus": 10, "tasks": 1}}
REQUESTS = (("GET /api", "GET"), ("login", "POST"))
BUCKET = 2 ** (1 / 8)  # schema 3: an estimate is within this factor of the truth

# ---- Test data: records made from raw latency samples that the tests keep.


def make_run(seed: int = 7, regions=None, intervals: int = 6, run_id: str = RUN_ID, slow_region: str = ""):
    """Records of a run, and the raw samples of each request record by (region, task, request, method, class, start)."""
    regions = REGIONS if regions is None else regions
    rng = random.Random(seed)
    records, samples = [], {}
    for region, tasks in regions.items():
        scale = 0.08 if region == slow_region else 0.02
        for task in map(str, range(tasks)):
            for step in range(intervals):
                start = T0 + step * INTERVAL
                for name, method in REQUESTS:
                    for status_class in ("2xx", "5xx"):
                        count = rng.randint(20, 60) if status_class == "2xx" else rng.randint(0, 3)
                        if not count:
                            continue
                        values = [rng.lognormvariate(math.log(scale), 0.6) for _sample in range(count)]
                        histogram = Histogram()
                        for value in values:
                            histogram.record(value)
                        failures = count if status_class == "5xx" else 0
                        records.append(
                            RequestRecord(
                                run_id,
                                region,
                                task,
                                name,
                                method,
                                status_class,
                                start,
                                INTERVAL,
                                count,
                                failures,
                                histogram,
                            )
                        )
                        samples[(region, task, name, method, status_class, start)] = values
                records.append(TaskRecord(run_id, region, task, start, INTERVAL, 40, 50000, 7000, 10 + step))
    return records, samples


def describe_run(regions=None, completed=None, exit_codes=None, start_at=T0 + 2500, **extra) -> dict:
    """A run as orchestrator_state.describe_run returns it."""
    regions = REGIONS if regions is None else regions
    completed = (
        {region: [str(task) for task in range(count)] for region, count in regions.items()}
        if completed is None
        else completed
    )
    exit_codes = (
        {region: {task: 0 for task in tasks} for region, tasks in completed.items()}
        if exit_codes is None
        else exit_codes
    )
    return {
        "run_id": RUN_ID,
        "exists": True,
        "regions": dict(regions),
        "start_lead_seconds": 10,
        "registered_tasks": {region: [str(task) for task in range(count)] for region, count in regions.items()},
        "start_at": start_at,
        "start_at_iso8601": iso8601_utc(start_at),
        "completed_tasks": completed,
        "completed_regions": sorted(
            region for region, count in regions.items() if len(completed.get(region, [])) == count
        ),
        "exit_codes": exit_codes,
        "created_at": T0 - 60000,
        **extra,
    }


def summary_of(records, run=None, **kwargs) -> dict:
    arguments = {
        "run": run or describe_run(),
        "plan": PLAN,
        "run_id": RUN_ID,
        "deployment": "constellation",
        "results_store": "s3",
    }
    arguments.update(kwargs)
    return build_summary(records, **arguments)


def folded(records) -> list:
    fold = report_data.TaskFold()
    for record in records:
        fold.add(record)
    return fold.records()


def test_records_folded_over_the_tasks_give_the_same_summary_with_far_fewer_records():
    """What the readers return (TaskFold) is what the report needs: the summary of the tasks'
    records and that of the folded ones are the same, expected_response thresholds included."""
    records, _samples = make_run()
    thresholds = parse_all(
        {
            "http_req_duration": ["p(95)<100", "avg<50"],
            "http_req_duration{expected_response:true,name:GET /api}": ["p(99)<150"],
            "http_req_failed": ["rate<0.05"],
            "http_reqs": ["count>10"],
            "iterations": ["rate>1"],
        },
        "constellation_thresholds",
    )
    fold = report_data.TaskFold()
    for record in records:
        fold.add(record)
    assert len(fold.records()) < len(records)
    assert {record.task for record in fold.records()} == {report_data.ALL_TASKS}
    folded_summary = summary_of(fold.records(), thresholds=thresholds, stored_requests=fold.requests_by_task)
    assert folded_summary == summary_of(records, thresholds=thresholds)
    # Requests that partly failed stay apart from those that all or none did, as in the tasks' records.
    other_task = dataclasses.replace(records[0], task="9")
    assert len(folded([dataclasses.replace(records[0], failures=1), other_task])) == 2
    assert len(folded([records[0], other_task])) == 1


def stored_by_task(records) -> dict:
    stored: dict = {}
    for record in records:
        if isinstance(record, RequestRecord):
            stored[(record.region, record.task)] = stored.get((record.region, record.task), 0) + record.requests
    return stored


def accounting_of(records, changes=None) -> dict:
    """Every task's accounting as a task whose aggregator wrote everything reports it; ``changes`` by (region, task)."""
    reported: dict = {}
    for (region, task), requests in stored_by_task(records).items():
        counts = {"k6_requests": requests, "requests_received": requests, "requests_written": requests,
                  "records_lost": 0, "store_retries": 1}
        reported.setdefault(region, {})[task] = {**counts, **(changes or {}).get((region, task), {})}
    return reported


def test_every_request_k6_counted_in_the_store_makes_a_complete_accounting():
    records, _samples = make_run()
    summary = summary_of(records, run=describe_run(accounting=accounting_of(records)))
    accounting = summary["accounting"]
    assert accounting["incomplete"] == [] and summary["verdict"] == "pass"
    assert accounting["k6_requests"] == accounting["stored_requests"] == summary["overall"]["requests"]
    assert accounting["store_retries"] == len(stored_by_task(records))
    region, task = sorted(stored_by_task(records))[0]
    assert accounting["tasks"][region][task]["stored_requests"] == accounting["tasks"][region][task]["k6_requests"]


def test_requests_k6_counted_that_are_not_in_the_store_make_the_verdict_incomplete_naming_the_task():
    records, _samples = make_run()
    region, task = sorted(stored_by_task(records))[-1]
    held = stored_by_task(records)[(region, task)]
    # The aggregator was killed: it reported nothing, the store holds what it wrote before.
    reported = accounting_of(records, {(region, task): {"k6_requests": held + 326}})
    for field in ("requests_received", "requests_written", "records_lost", "store_retries"):
        reported[region][task].pop(field)
    exit_codes = {r: {t: (87 if (r, t) == (region, task) else 0) for t in tasks} for r, tasks in reported.items()}
    run = describe_run(accounting=reported, exit_codes=exit_codes)
    failing = parse_all({"http_req_duration": ["p(95)<1"]}, "constellation_thresholds")

    summary = summary_of(records, run=run, thresholds=failing)

    assert summary["verdict"] == "incomplete", "missing results come before the thresholds they skew"
    (line,) = summary["accounting"]["incomplete"]
    assert line.startswith(f"{region} task {task}: its aggregator did not confirm the final flush")
    assert f"326 of the {held + 326:,} requests k6 counted are not in the results store" in line
    assert summary["accounting"]["tasks"][region][task]["missing"] and summary["accounting"]["k6_requests"] == summary["overall"]["requests"] + 326


def test_the_store_holding_every_request_k6_counted_outweighs_a_flush_reported_lost():
    """The aggregator answered /finish before it could write everything, and wrote it before its container
    stopped: the store is the truth. Without k6's count, the aggregator's own report judges."""
    records, _samples = make_run()
    region, task = sorted(stored_by_task(records))[0]
    late = {(region, task): {"records_lost": 4, "requests_written": 0}}
    exit_codes = {r: {t: (87 if (r, t) == (region, task) else 0) for t in tasks} for r, tasks in accounting_of(records).items()}
    summary = summary_of(records, run=describe_run(accounting=accounting_of(records, late), exit_codes=exit_codes))
    assert summary["verdict"] == "pass" and summary["accounting"]["incomplete"] == []

    unknown = accounting_of(records, late)
    del unknown[region][task]["k6_requests"]
    summary = summary_of(records, run=describe_run(accounting=unknown, exit_codes=exit_codes))
    assert summary["verdict"] == "incomplete"
    assert summary["accounting"]["incomplete"] == [
        f"{region} task {task}: its aggregator did not confirm the final flush (it died, or the results store refused its records);"
        " its aggregator could not write 4 records to the results store"
    ]


def test_pushes_prometheus_did_not_take_are_reported_and_judge_nothing():
    records, _samples = make_run()
    (region, task), (other_region, other_task) = sorted(stored_by_task(records))[:2]
    changes = {(region, task): {"live_metrics_sent": 40, "live_metrics_lost": 12}, (other_region, other_task): {"live_metrics_sent": 52}}
    summary = summary_of(records, run=describe_run(accounting=accounting_of(records, changes)))
    assert summary["verdict"] == "pass" and summary["accounting"]["incomplete"] == []
    assert summary["accounting"]["live_metrics"] == {
        "sent": 92, "lost": 12, "gaps": [f"{region} task {task}: 12 of 52 pushes not taken"]
    }
    assert "live_metrics" not in summary_of(records, run=describe_run(accounting=accounting_of(records)))["accounting"]


def test_tasks_of_an_earlier_image_without_accounting_are_judged_as_before():
    records, _samples = make_run()
    summary = summary_of(records)
    assert summary["verdict"] == "pass" and summary["accounting"]["incomplete"] == []
    assert summary["accounting"]["k6_requests"] is None


def test_the_accountings_exit_code_is_the_load_generators():
    assert accounting.AGGREGATOR_UNCONFIRMED == exit_codes.Failure.AGGREGATOR_FINISH
    assert accounting.INTERRUPTED == exit_codes.EXTERNAL_ABORT


def test_an_interrupted_task_keeps_its_records_and_the_summary_says_how_much_of_its_planned_load_is_missing():
    records, _samples = make_run()
    (region, task), *_others = sorted(stored_by_task(records))
    reported = accounting_of(records)
    run = describe_run(accounting=reported)
    run["start_at"] = 1_000_000
    reported[region][task]["ended_at"] = 1_000_000 + 15_000  # a quarter of the way down a 0 -> 8 -> 0 shape
    run["exit_codes"] = {r: {t: (105 if (r, t) == (region, task) else 0) for t in tasks} for r, tasks in reported.items()}
    shape = [[0, 8], [20_000, 8], [40_000, 0]]
    plan = {r: {"vus": 8, "tasks": 1, "duration_ms": 40_000, "planned_vus": shape} for r in reported}

    summary = report_data.build_summary(records, run=run, plan=plan, run_id="r1", deployment="d", results_store="s3")

    assert summary["verdict"] == "incomplete"
    (line,) = summary["accounting"]["incomplete"]
    # 15 s of 8 VUs ran of 160 + 80 VU-seconds: 50 %.
    assert line == (f"{region} task {task}: it was interrupted (SIGTERM: a Spot interruption or a StopTask) before the end"
                    " of its load (15.0 s after the start: 50 % of its planned load did not run)")
    stopped = report_data.build_summary(records, run=dict(run, stop={"reason": "stopped", "at": 1_015_000}), plan=plan,
                                        run_id="r1", deployment="d", results_store="s3")
    assert stopped["accounting"]["incomplete"] == [] and stopped["verdict"] == "pass", "a stop_test is not an interruption"


def test_the_missing_share_is_the_planned_vu_time_after_the_interruption():
    ramp = [[0, 0], [10_000, 10], [30_000, 10]]  # 50 000 + 200 000 VU-ms
    assert accounting.missing_share(ramp, 10_000) == pytest.approx(200_000 / 250_000)
    assert accounting.missing_share(ramp, 0) == 1.0 and accounting.missing_share(ramp, 40_000) == 0.0
    assert accounting.missing_share([[0, 0], [5_000, 0], [5_000, 4], [15_000, 4]], 5_000) == 1.0  # before it joined
    assert accounting.missing_share([], 5_000) is None


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def quantiles_ms(histogram: Histogram) -> dict[str, float]:
    """The latency statistics computed here, independently of report_data's grouping."""
    return {
        "min": round(histogram.quantile(0) * 1000, 3),
        "med": round(histogram.quantile(0.5) * 1000, 3),
        "p90": round(histogram.quantile(0.9) * 1000, 3),
        "p95": round(histogram.quantile(0.95) * 1000, 3),
        "p99": round(histogram.quantile(0.99) * 1000, 3),
        "max": round(histogram.quantile(1) * 1000, 3),
    }


# ---- Reading Timestream.

COLUMNS = [
    ("run_id", "VARCHAR"),
    ("region", "VARCHAR"),
    ("task", "VARCHAR"),
    ("request", "VARCHAR"),
    ("method", "VARCHAR"),
    ("status_class", "VARCHAR"),
    ("measure_name", "VARCHAR"),
    ("time", "TIMESTAMP"),
    ("length_ms", "BIGINT"),
    ("requests", "BIGINT"),
    ("failures", "BIGINT"),
    ("latency", "VARCHAR"),
    ("iterations", "BIGINT"),
    ("data_received", "BIGINT"),
    ("data_sent", "BIGINT"),
    ("vus", "BIGINT"),
]
COLUMN_INFO = [{"Name": name, "Type": {"ScalarType": kind}} for name, kind in COLUMNS]


def timestream_row(record) -> dict:
    """The row Timestream's SELECT * returns for what the aggregator wrote: NULL in the other kind's columns."""
    written = to_timestream(record)
    values = {dimension["Name"]: dimension["Value"] for dimension in written["Dimensions"]}
    values.update({measure["Name"]: measure["Value"] for measure in written["MeasureValues"]})
    values["measure_name"] = written["MeasureName"]
    moment = datetime.fromtimestamp(int(written["Time"]) / 1000, tz=timezone.utc)
    values["time"] = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(written['Time']) % 1000:03d}000000"
    return {
        "Data": [{"ScalarValue": values[name]} if name in values else {"NullValue": True} for name, _kind in COLUMNS]
    }


@pytest.fixture
def timestream():
    client = boto3.client(
        "timestream-query",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect_pages(stubber: Stubber, query: str, pages: list[list[dict]]) -> None:
    for number, rows in enumerate(pages):
        response = {"QueryId": "q-1", "Rows": rows, "ColumnInfo": COLUMN_INFO}
        if number < len(pages) - 1:
            response["NextToken"] = f"token-{number + 1}"
        expected = {"QueryString": query}
        if number:
            expected["NextToken"] = f"token-{number}"
        stubber.add_response("query", response, expected)


def test_the_timestream_query_quotes_identifiers_and_selects_one_run():
    assert report_data.timestream_query("loadtest", "intervals", RUN_ID) == (
        'SELECT * FROM "loadtest"."intervals" WHERE "run_id" = \'nightly-42\''
        " AND \"measure_name\" IN ('requests', 'task') AND TRUE"
    )


def test_the_timestream_query_of_a_started_run_scans_from_15_minutes_before_its_start():
    query = report_data.timestream_query("loadtest", "intervals", RUN_ID, 1_750_000_000_000)
    assert query.endswith(" AND time >= from_milliseconds(1749999100000)")


@pytest.mark.parametrize("start_at", [-1, "1750000000000", 1.5e12, True])
def test_a_start_that_is_not_epoch_milliseconds_never_reaches_the_sql(start_at):
    with pytest.raises(ValueError, match="is not a time in epoch milliseconds"):
        report_data.timestream_query("loadtest", "intervals", RUN_ID, start_at)


@pytest.mark.parametrize(
    ("database", "table", "run_id", "message"),
    [
        ("loadtest", "intervals", "x' OR '1'='1", "is not a run id"),
        ("loadtest", "intervals", "", "is not a run id"),
        ("loadtest", "intervals", "-leading-dash", "is not a run id"),
        ("loadtest", "intervals", "a" * 65, "is not a run id"),
        ('load"test', "intervals", RUN_ID, "is not a Timestream database name"),
        ("loadtest", "in tervals", RUN_ID, "is not a Timestream table name"),
    ],
)
def test_nothing_unsafe_reaches_the_sql(timestream, database, table, run_id, message):
    client, _stubber = timestream  # no response queued: any call would fail the test
    with pytest.raises(ValueError, match=message):
        report_data.read_records_timestream(client, database, table, run_id)


def test_timestream_records_are_read_across_every_page_including_empty_ones(timestream):
    client, stubber = timestream
    records, _samples = make_run(intervals=2)
    rows = [timestream_row(record) for record in records]
    query = report_data.timestream_query("loadtest", "intervals", RUN_ID)
    # Timestream answers a query still running with pages of no rows and a NextToken.
    expect_pages(stubber, query, [[], rows[:5], [], rows[5:20], rows[20:]])

    read = report_data.read_records_timestream(client, "loadtest", "intervals", RUN_ID)

    assert sorted(map(to_json, read)) == sorted(map(to_json, folded(records)))
    assert {type(record) for record in read} == {RequestRecord, TaskRecord}  # both kinds, NULLs and all


def test_an_empty_timestream_result_is_no_records(timestream):
    client, stubber = timestream
    expect_pages(stubber, report_data.timestream_query("loadtest", "intervals", RUN_ID), [[]])
    assert report_data.read_records_timestream(client, "loadtest", "intervals", RUN_ID) == []


def test_a_timestream_table_never_written_to_has_no_records(timestream):
    client, stubber = timestream
    query = report_data.timestream_query("loadtest", "intervals", RUN_ID)
    message = "line 1:45: Column 'run_id' does not exist"
    stubber.add_client_error("query", "ValidationException", message, 400, expected_params={"QueryString": query})
    assert report_data.read_records_timestream(client, "loadtest", "intervals", RUN_ID) == []


def test_other_timestream_errors_are_not_hidden(timestream):
    client, stubber = timestream
    query = report_data.timestream_query("loadtest", "intervals", RUN_ID)
    stubber.add_client_error("query", "AccessDeniedException", "no", 400, expected_params={"QueryString": query})
    with pytest.raises(ClientError):
        report_data.read_records_timestream(client, "loadtest", "intervals", RUN_ID)


def test_a_timestream_row_missing_a_value_of_its_kind_is_an_error_naming_the_row(timestream):
    client, stubber = timestream
    records, _samples = make_run(intervals=1)
    rows = [timestream_row(record) for record in records[:3]]
    column = "requests" if isinstance(records[2], RequestRecord) else "iterations"
    rows[2]["Data"][[name for name, _kind in COLUMNS].index(column)] = {"NullValue": True}
    expect_pages(stubber, report_data.timestream_query("loadtest", "intervals", RUN_ID), [rows[:1], rows[1:]])
    with pytest.raises(RecordsError, match=f"row 3 of the Timestream query on loadtest.intervals: .* has no {column}"):
        report_data.read_records_timestream(client, "loadtest", "intervals", RUN_ID)


# ---- Reading S3.


def put_records(s3, key: str, records) -> None:
    s3.put_object(Bucket="home", Key=key, Body="".join(to_json(record) + "\n" for record in records).encode())


def test_s3_records_are_read_from_every_object_under_the_runs_prefix_only(moto):
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="home", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    records, _samples = make_run(intervals=2)
    for index, first in enumerate(range(0, len(records), 12)):
        record = records[first]
        key = f"runs/{RUN_ID}/records/{record.region}/{record.task}/{record.start_ms:013d}-{index:012x}.jsonl"
        put_records(s3, key, records[first : first + 12])
    others, _samples = make_run(intervals=1, run_id=f"{RUN_ID}0")  # runs/nightly-420/ shares the run's prefix text
    put_records(s3, f"runs/{RUN_ID}0/records/us-east-2/0/0.jsonl", others)
    s3.put_object(Bucket="home", Key=f"runs/{RUN_ID}/records/README.txt", Body=b"not records")
    s3.put_object(Bucket="home", Key=f"runs/{RUN_ID}/script.js", Body=b"export default function () {}")

    read = report_data.read_records_s3(s3, "home", RUN_ID)

    assert sorted(map(to_json, read)) == sorted(map(to_json, folded(records)))


def test_a_bad_s3_line_is_an_error_naming_the_object_and_line(moto):
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="home", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    records, _samples = make_run(intervals=1)
    key = f"runs/{RUN_ID}/records/us-east-2/0/1.jsonl"
    body = to_json(records[0]) + "\n\n" + to_json(records[1]) + "\n" + '{"kind": "requests", "run_id"\n'
    s3.put_object(Bucket="home", Key=key, Body=body.encode())
    with pytest.raises(RecordsError, match=f"s3://home/{key} line 4: not an interval record"):
        report_data.read_records_s3(s3, "home", RUN_ID)


def s3_body(text: str) -> StreamingBody:
    return StreamingBody(io.BytesIO(text.encode()), len(text.encode()))


def test_s3_listing_pages_are_followed_and_a_record_of_another_run_is_refused():
    s3 = boto3.client("s3", region_name="eu-central-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    records, _samples = make_run(intervals=1)
    prefix = f"runs/{RUN_ID}/records/"
    stranger = dataclasses.replace(records[0], run_id="other-run")
    with Stubber(s3) as stubber:
        stubber.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": f"{prefix}a.jsonl"}], "IsTruncated": True, "NextContinuationToken": "page-2"},
            {"Bucket": "home", "Prefix": prefix},
        )
        stubber.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": f"{prefix}b.jsonl"}], "IsTruncated": False},
            {"Bucket": "home", "Prefix": prefix, "ContinuationToken": "page-2"},
        )
        stubber.add_response(
            "get_object", {"Body": s3_body(to_json(records[0]) + "\n")}, {"Bucket": "home", "Key": f"{prefix}a.jsonl"}
        )
        stubber.add_response(
            "get_object", {"Body": s3_body(to_json(stranger) + "\n")}, {"Bucket": "home", "Key": f"{prefix}b.jsonl"}
        )
        with pytest.raises(RecordsError, match=f"s3://home/{prefix}b.jsonl line 1: the record is of run 'other-run'"):
            report_data.read_records_s3(s3, "home", RUN_ID)
        stubber.assert_no_pending_responses()


# ---- summary.json: the contract's shape.

TOP_LEVEL = {
    "schema", "run_id", "deployment", "results_store", "complete", "stop", "progress", "start_at_ms", "start_at",
    "start_skew_ms", "data_from_ms", "data_to_ms", "measured_seconds", "interval_ms", "plan", "overall", "regions",
    "requests", "status_classes", "timeseries", "thresholds", "task_thresholds", "exit_codes", "baseline", "verdict",
    "accounting",
}  # fmt: skip
TOTALS = {"requests", "failures", "error_rate", "rps", "iterations", "data_received", "data_sent", "latency"}
LATENCY = {"min", "avg", "med", "p90", "p95", "p99", "max"}
POINT = {"t_ms", "requests", "rps", "error_rate", "p50", "p90", "p95", "p99", "vus"}


def test_the_summary_has_exactly_the_fields_of_the_contract_and_is_plain_json():
    records, _samples = make_run()
    summary = summary_of(records, thresholds=parse_all({"http_req_duration": ["p(95)<500"]}, "script"))
    assert set(summary) == TOP_LEVEL
    assert set(summary["overall"]) == TOTALS and set(summary["overall"]["latency"]) == LATENCY
    assert all(set(totals) == TOTALS for totals in summary["regions"].values())
    assert all(
        set(row) == TOTALS - {"iterations", "data_received", "data_sent"} | {"request", "method"}
        for row in summary["requests"]
    )
    assert all(set(point) == POINT for series in summary["timeseries"].values() for point in series)
    assert summary["schema"] == 1 and summary["results_store"] == "s3" and summary["deployment"] == "constellation"
    assert summary["start_at"] == "2025-11-28T08:53:22.500Z"
    assert summary["interval_ms"] == INTERVAL
    assert (summary["data_from_ms"], summary["data_to_ms"]) == (T0, T0 + 6 * INTERVAL)
    assert summary["plan"] == PLAN
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_the_summary_is_the_same_whatever_order_the_records_come_in():
    records, _samples = make_run()
    thresholds = parse_all({"http_req_duration": ["avg<30", "p(99)<100"], "http_reqs": ["rate>10"]}, "script")
    first = json.dumps(summary_of(records, thresholds=thresholds), sort_keys=True)
    random.Random(3).shuffle(records)
    assert json.dumps(summary_of(list(reversed(records)), thresholds=thresholds), sort_keys=True) == first


# ---- summary.json: the numbers.


def test_percentiles_equal_an_independent_merge_of_the_same_histograms():
    records, _samples = make_run(slow_region="eu-west-1")
    summary = summary_of(records)
    requests = [record for record in records if isinstance(record, RequestRecord)]
    shuffled = random.Random(5).sample(requests, len(requests))

    # All at once, in another order than report_data's per interval, then per region, then overall.
    overall = merge_all(record.latency for record in shuffled)
    assert {k: v for k, v in summary["overall"]["latency"].items() if k != "avg"} == quantiles_ms(overall)
    for region in REGIONS:
        merged = merge_all(record.latency for record in shuffled if record.region == region)
        assert {k: v for k, v in summary["regions"][region]["latency"].items() if k != "avg"} == quantiles_ms(merged)
    for row in summary["requests"]:
        merged = merge_all(r.latency for r in shuffled if (r.request, r.method) == (row["request"], row["method"]))
        assert row["latency"]["p95"] == quantiles_ms(merged)["p95"]
    for point in summary["timeseries"]["overall"]:
        merged = merge_all(record.latency for record in shuffled if record.start_ms == point["t_ms"])
        assert point["p99"] == quantiles_ms(merged)["p99"]
    assert summary["regions"]["eu-west-1"]["latency"]["p95"] > 2 * summary["regions"]["us-east-2"]["latency"]["p95"]


def test_percentiles_are_within_a_bucket_of_the_raw_samples_and_the_average_is_exact():
    records, samples = make_run(seed=11)
    summary = summary_of(records)
    everything = [value for values in samples.values() for value in values]
    latency = summary["overall"]["latency"]
    assert latency["avg"] == pytest.approx(sum(everything) / len(everything) * 1000, abs=0.001)
    for name, q in (("med", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert latency[name] == pytest.approx(nearest_rank(everything, q) * 1000, rel=BUCKET - 1), name
    assert min(everything) * 1000 / BUCKET - 0.001 <= latency["min"] <= min(everything) * 1000
    assert max(everything) * 1000 <= latency["max"] <= max(everything) * 1000 * BUCKET + 0.001
    login = [value for key, values in samples.items() if key[2] == "login" for value in values]
    [row] = [row for row in summary["requests"] if row["request"] == "login"]
    assert row["latency"]["p95"] == pytest.approx(nearest_rank(login, 0.95) * 1000, rel=BUCKET - 1)


def test_totals_status_classes_and_throughput_add_up():
    records, _samples = make_run()
    summary = summary_of(records)
    requests = [record for record in records if isinstance(record, RequestRecord)]
    total = sum(record.requests for record in requests)
    failures = sum(record.failures for record in requests)
    # From start_at (2.5 s into the first interval) to the end of the sixth interval.
    assert summary["measured_seconds"] == 27.5
    overall = summary["overall"]
    assert (overall["requests"], overall["failures"]) == (total, failures)
    assert overall["error_rate"] == round(failures / total, 6)
    assert overall["rps"] == round(total / 27.5, 3)
    assert overall["iterations"] == 40 * 3 * 6 and overall["data_received"] == 50000 * 3 * 6
    assert sum(totals["requests"] for totals in summary["regions"].values()) == total
    assert sum(totals["rps"] for totals in summary["regions"].values()) == pytest.approx(overall["rps"], abs=0.002)
    assert sum(row["requests"] for row in summary["requests"]) == total
    assert [(row["request"], row["method"]) for row in summary["requests"]] == sorted(REQUESTS)
    classes = summary["status_classes"]
    assert set(classes) == {"overall", *REGIONS}
    assert classes["overall"] == {"2xx": total - failures, "5xx": failures}
    assert sum(classes[region]["5xx"] for region in REGIONS) == failures


def test_time_series_have_one_point_per_interval_overall_and_per_region():
    records, _samples = make_run()
    series = summary_of(records)["timeseries"]
    assert set(series) == {"overall", *REGIONS}
    starts = [T0 + step * INTERVAL for step in range(6)]
    assert all([point["t_ms"] for point in points] == starts for points in series.values())
    for step, point in enumerate(series["overall"]):
        at = [r for r in records if isinstance(r, RequestRecord) and r.start_ms == starts[step]]
        assert point["requests"] == sum(r.requests for r in at)
        assert point["rps"] == round(point["requests"] / 5, 3)
        assert point["error_rate"] == round(sum(r.failures for r in at) / point["requests"], 6)
        assert point["vus"] == (10 + step) * 3
        assert point["requests"] == sum(series[region][step]["requests"] for region in REGIONS)
    assert series["us-east-2"][0]["vus"] == 20


@pytest.mark.parametrize(
    ("run_extra", "start_at", "measured", "skew"),
    [
        ({}, T0 + 2500, 27.5, None),
        (
            {"started_at": {"us-east-2": {"0": T0 + 1000, "1": T0 + 1040}, "eu-west-1": {"0": T0 + 1010}}},
            T0 + 900,
            29.0,
            40.0,
        ),
        ({"started_at": {"us-east-2": {"0": T0 + 1000}}, "start_skew_ms": 12.5}, T0 + 900, 29.0, 12.5),
        ({}, T0 - 3000, 30.0, None),  # a start before the first interval read: the span starts with the data
        ({}, None, 30.0, None),
    ],
)
def test_measured_seconds_start_with_the_load_and_end_with_the_last_interval(run_extra, start_at, measured, skew):
    records, _samples = make_run()
    summary = summary_of(records, run=describe_run(start_at=start_at, **run_extra))
    assert (summary["measured_seconds"], summary["start_skew_ms"]) == (measured, skew)
    assert summary["overall"]["rps"] == round(summary["overall"]["requests"] / measured, 3)


def test_a_partial_run_says_so_and_shows_the_data_so_far():
    records, _samples = make_run(regions={"us-east-2": 2})  # eu-west-1 has not written anything yet
    run = describe_run(completed={"us-east-2": ["0"], "eu-west-1": []}, exit_codes={"us-east-2": {"0": 99}})
    breached = parse_all({"http_req_duration": ["p(95)<1"]}, "constellation_thresholds")
    summary = summary_of(records, run=run, thresholds=breached)
    assert summary["complete"] is False
    assert summary["verdict"] == "partial"  # not "fail": the run is not over
    assert summary["progress"] == {"planned_tasks": 3, "registered_tasks": 3, "completed_tasks": 1}
    assert summary["thresholds"][0]["ok"] is False
    empty = summary["regions"]["eu-west-1"]
    assert (empty["requests"], empty["rps"], empty["error_rate"], empty["iterations"]) == (0, 0.0, None, 0)
    assert set(empty["latency"].values()) == {None}
    assert [point["requests"] for point in summary["timeseries"]["eu-west-1"]] == [0] * 6
    assert {point["vus"] for point in summary["timeseries"]["eu-west-1"]} == {None}
    assert summary["status_classes"]["eu-west-1"] == {"2xx": 0, "5xx": 0}


def test_a_run_without_any_records_yet_has_nulls_not_errors():
    summary = summary_of([], run=describe_run(completed={}, exit_codes={}, start_at=None))
    assert (summary["measured_seconds"], summary["interval_ms"], summary["data_from_ms"]) == (None, None, None)
    assert summary["overall"]["rps"] is None and summary["overall"]["latency"]["p95"] is None
    assert summary["timeseries"] == {"overall": [], "us-east-2": [], "eu-west-1": []}
    assert summary["verdict"] == "partial"
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize(
    ("thresholds", "exit_code", "verdict"),
    [
        ({"http_req_duration": ["p(95)<5000"], "http_req_failed": ["rate<0.5"]}, 0, "pass"),
        ({"http_req_duration": ["p(95)<1"]}, 0, "fail"),
        ({"http_req_duration": ["p(95)<5000"]}, 107, "fail"),
        # A task that crossed only its own thresholds: the merged data decides.
        ({"http_req_duration": ["p(95)<5000"]}, 99, "pass"),
        ({"checks": ["rate>0.99"]}, 0, "fail"),  # k6's verdict of one task
    ],
)
def test_the_verdict_of_a_complete_run(thresholds, exit_code, verdict):
    records, _samples = make_run()
    run = describe_run(
        exit_codes={"us-east-2": {"0": 0, "1": exit_code}, "eu-west-1": {"0": 0}},
        task_thresholds={
            "us-east-2": {"0": {"checks": {"rate>0.99": True}}},
            "eu-west-1": {"0": {"checks": {"rate>0.99": False}}},
        },
    )
    summary = summary_of(records, run=run, thresholds=parse_all(thresholds, "script"))
    assert summary["complete"] is True
    assert summary["verdict"] == verdict
    assert summary["task_thresholds"] == run["task_thresholds"]
    assert summary["exit_codes"]["us-east-2"] == {"0": 0, "1": exit_code}


def test_records_of_different_interval_lengths_are_refused():
    records, _samples = make_run(intervals=1)
    odd = TaskRecord(RUN_ID, "us-east-2", "0", T0 + 60000, 10000, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="intervals of 5000, 10000 ms"):
        summary_of([*records, odd])


# ---- Baseline.


def test_baseline_deltas_overall_and_for_regions_in_both_runs():
    records, _samples = make_run(slow_region="eu-west-1")
    baseline, _samples = make_run(seed=99, regions={"us-east-2": 2, "ap-south-1": 1}, run_id="nightly-41")
    baseline_run = describe_run(regions={"us-east-2": 2, "ap-south-1": 1}, start_at=T0)
    summary = summary_of(records, baseline_records=baseline, baseline_run_id="nightly-41", baseline_run=baseline_run)
    base = summary_of(
        baseline, run=baseline_run, plan={"us-east-2": PLAN["us-east-2"], "ap-south-1": {"vus": 5, "tasks": 1}}
    )

    assert summary["baseline"]["run_id"] == "nightly-41"
    deltas = summary["baseline"]["deltas"]
    assert set(deltas) == {"overall", "us-east-2"}  # eu-west-1 and ap-south-1 are in one run only
    for series, current, before in (
        ("overall", summary["overall"], base["overall"]),
        ("us-east-2", summary["regions"]["us-east-2"], base["regions"]["us-east-2"]),
    ):
        assert set(deltas[series]) == {"rps", "p95", "error_rate"}
        for name, now, then in (
            ("rps", current["rps"], before["rps"]),
            ("p95", current["latency"]["p95"], before["latency"]["p95"]),
            ("error_rate", current["error_rate"], before["error_rate"]),
        ):
            delta = deltas[series][name]
            assert (delta["baseline"], delta["current"]) == (then, now)
            assert delta["delta"] == pytest.approx(now - then, abs=1e-6)
            assert delta["relative"] == pytest.approx((now - then) / then, abs=1e-6)
    assert base["measured_seconds"] == 30.0  # the baseline's span starts at its own start_at
    assert deltas["overall"]["p95"]["delta"] > 0  # the slow region only this run has


def test_no_baseline_is_null_and_an_empty_one_has_null_deltas():
    records, _samples = make_run(intervals=2)
    assert summary_of(records)["baseline"] is None
    empty = summary_of(records, baseline_records=[], baseline_run_id="nightly-41")["baseline"]
    assert empty["run_id"] == "nightly-41"
    current = summary_of(records)["overall"]["rps"]
    assert empty["deltas"]["overall"]["rps"] == {"baseline": None, "current": current, "delta": None, "relative": None}
    assert set(empty["deltas"]) == {"overall"}


@pytest.mark.parametrize(
    ("duration_ms", "measured"),
    [
        (25_000, 25.0),  # the load ended inside the last interval: the span ends with it
        (20_000, 27.5),  # ends before the last interval read starts: not trusted, the data decides
        (40_000, 27.5),  # ends after the data (a partial run): the data so far
    ],
)
def test_the_planned_duration_ends_the_span_inside_the_last_interval(duration_ms, measured):
    records, _samples = make_run()
    summary = summary_of(records, run=describe_run(start_at=T0 + 2500), duration_ms=duration_ms)
    assert summary["measured_seconds"] == measured


def test_the_span_of_a_run_whose_tasks_reported_their_end_is_k6s_own_start_to_end():
    """Aligned intervals stretch the span (an arrival-rate run of 20 s read as 22.4 s); k6's own ends do not."""
    records, _samples = make_run()
    started = {"us-east-2": {"0": T0 + 1000, "1": T0 + 1040}, "eu-west-1": {"0": T0 + 1010}}
    ends = {"us-east-2": {"0": T0 + 21_000, "1": T0 + 21_020}, "eu-west-1": {"0": T0 + 20_990}}
    accounting = {region: {task: {"ended_at": end} for task, end in tasks.items()} for region, tasks in ends.items()}
    summary = summary_of(records, run=describe_run(started_at=started, accounting=accounting), duration_ms=40_000)
    assert summary["measured_seconds"] == 20.02
    assert summary["overall"]["rps"] == round(summary["overall"]["requests"] / 20.02, 3)
    # One task has not reported its end yet: the span of the data so far.
    del accounting["eu-west-1"]["0"]
    partial = summary_of(records, run=describe_run(started_at=started, accounting=accounting))
    assert partial["measured_seconds"] == 29.0


def test_the_verdict_of_a_stopped_run_is_that_of_what_ran():
    ended_by_the_stop = {"us-east-2": {"0": 105, "1": 90}}

    assert report_data.verdict(True, [{"ok": True}], ended_by_the_stop, stopped=True) == "pass"
    assert report_data.verdict(True, [{"ok": False}], ended_by_the_stop, stopped=True) == "fail"
    assert report_data.verdict(True, [{"ok": True}], ended_by_the_stop) == "fail"  # not stopped: 105 is a failure
    assert report_data.verdict(True, [], {"us-east-2": {"0": 107}}, stopped=True) == "fail"


def test_the_dashboard_link_names_the_run_its_time_and_its_overall_thresholds():
    from urllib.parse import parse_qs, urlsplit

    thresholds = [
        {"metric": "http_req_duration", "tags": {"region": "us-east-2"}, "aggregation": "p(95)", "operator": "<", "limit": 300.0},
        {"metric": "http_req_duration", "tags": {}, "aggregation": "p(95)", "operator": "<", "limit": 500.0},
        {"metric": "http_req_failed", "tags": {}, "aggregation": "rate", "operator": "<", "limit": 0.01},
    ]
    summary = {"run_id": "nightly-42", "start_at_ms": 1_000_000, "data_to_ms": 1_300_000, "complete": True, "thresholds": thresholds}
    url = report_data.dashboard_link("https://grafana.example.com/", summary)
    assert url.startswith("https://grafana.example.com/d/constellation-loadtest/constellation-loadtest-run?")
    assert parse_qs(urlsplit(url).query) == {
        "var-run_id": ["nightly-42"], "from": ["940000"], "to": ["1360000"],
        "var-p95_threshold_ms": ["500"], "var-error_rate_threshold": ["0.01"],
    }
    running = parse_qs(urlsplit(report_data.dashboard_link("https://g", dict(summary, complete=False, thresholds=[]))).query)
    assert running == {"var-run_id": ["nightly-42"], "from": ["940000"], "to": ["now"]}
    assert report_data.dashboard_link("", summary) is None and report_data.dashboard_link(None, summary) is None
    dashboard = json.loads((REPO / "files" / "grafana" / "constellation-loadtest.json").read_text())
    assert report_data.GRAFANA_DASHBOARD_PATH.split("/")[1] == dashboard["uid"]


def test_planned_vus_follow_the_shape_between_its_points_and_take_the_value_after_a_jump():
    ramp = [[0, 0], [10_000, 8], [30_000, 8], [40_000, 0]]
    assert [report_data.planned_vus_at(ramp, at) for at in (0, 5_000, 10_000, 20_000, 35_000, 40_000, 41_000)] == [0, 4, 8, 8, 4, 0, 0]
    joins = [[0, 0], [10_000, 0], [10_000, 4], [30_000, 4]]
    assert [report_data.planned_vus_at(joins, at) for at in (9_999, 10_000, 29_999, 30_001)] == [0, 4, 4, 0]


def test_the_summary_keeps_each_regions_planned_shape_when_the_run_planned_one():
    records, _samples = make_run()
    shape = [[0, 0], [10_000, 8], [30_000, 8], [40_000, 0]]
    summary = report_data.build_summary(
        records, run=describe_run(), plan={"us-east-2": {"vus": 8, "tasks": 2, "duration_ms": 40_000, "planned_vus": shape},
                                           "ap-northeast-1": {"vus": 4, "tasks": 1}},
        run_id="r1", deployment="d", results_store="s3",
    )
    assert summary["plan"] == {"ap-northeast-1": {"vus": 4, "tasks": 1},
                               "us-east-2": {"vus": 8, "tasks": 2, "duration_ms": 40_000, "planned_vus": shape}}
