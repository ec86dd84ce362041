"""plugins/module_utils/results/progress.py: the progress object, the S3 reader (moto) and the Timestream query (Stubber)."""

from __future__ import annotations


import boto3
import pytest
from botocore.stub import Stubber


from ansible_collections.constellation.loadtest.plugins.module_utils.results import progress
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import ProgressError
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import RegionProgress
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import TaskProgress

BUCKET = "home"
RUN_ID = "run-1"
QUERY = (
    "SELECT region, SUM(requests) AS requests, SUM(failures) AS failures, COUNT(DISTINCT task) AS tasks"
    ' FROM "results"."intervals"'
    " WHERE run_id = 'run-1' AND measure_name = 'requests' AND TRUE GROUP BY region"
)
COLUMNS = [
    {"Name": "region", "Type": {"ScalarType": "VARCHAR"}},
    {"Name": "requests", "Type": {"ScalarType": "BIGINT"}},
    {"Name": "failures", "Type": {"ScalarType": "BIGINT"}},
    {"Name": "tasks", "Type": {"ScalarType": "BIGINT"}},
]


# ---- Run ids and keys.


@pytest.mark.parametrize("run_id", ["a", "20250601T120000Z", "e2e-run_1", "A" + "b" * 63])
def test_valid_run_ids_pass(run_id):
    assert progress.validate_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "-run", "_run", "b" * 65, "run 1", "run-1\n", "x' OR '1'='1", "run/1", None, 7])
def test_invalid_run_ids_are_refused_before_any_call(run_id):
    with pytest.raises(ProgressError, match="is not a run id"):
        progress.validate_run_id(run_id)


def test_records_are_the_json_lines_objects_only():
    assert progress.is_record_key("runs/r/records/us-east-2/0/1750000000000-0123456789ab.jsonl")
    assert not progress.is_record_key("runs/r/records/us-east-2/0/progress.json")


# ---- The progress object.


class _Request:
    KIND = "requests"

    def __init__(self, requests: int, failures: int) -> None:
        self.requests, self.failures = requests, failures


class _Task:
    KIND = "task"

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations


def test_task_progress_counts_request_and_task_records_and_round_trips():
    totals = TaskProgress()
    totals.count([_Request(10, 1), _Task(5), _Request(3, 3)])
    totals.count([_Task(2)])
    assert (totals.requests, totals.failures, totals.iterations) == (13, 4, 7)
    totals.updated_ms = 1_750_000_000_000
    assert TaskProgress.from_json(totals.to_json()) == totals


def test_task_progress_ignores_fields_it_does_not_know():
    text = '{"requests":1,"failures":0,"iterations":1,"updated_ms":5,"pushes":3}'
    assert TaskProgress.from_json(text) == TaskProgress(1, 0, 1, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON object was expected, got list"),
        ('{"failures":0,"iterations":0,"updated_ms":0}', "requests must be a count"),
        ('{"requests":-1,"failures":0,"iterations":0,"updated_ms":0}', "requests must be a count"),
        ('{"requests":1,"failures":true,"iterations":0,"updated_ms":0}', "failures must be a count"),
        ('{"requests":1,"failures":0,"iterations":"2","updated_ms":0}', "iterations must be a count"),
    ],
)
def test_a_malformed_progress_object_is_refused_with_a_reason(text, message):
    with pytest.raises(ProgressError, match=message):
        TaskProgress.from_json(text)


def test_summary_sums_the_regions_and_rates_errors():
    result = progress.summary({"us-east-2": RegionProgress(1000, 8, 3), "ap-northeast-1": RegionProgress(0, 0, 1)})
    assert list(result["regions"]) == ["ap-northeast-1", "us-east-2"]
    us_east_2 = {"requests": 1000, "failures": 8, "error_rate": 0.008, "tasks_reporting": 3}
    assert result["regions"]["us-east-2"] == us_east_2
    assert result["regions"]["ap-northeast-1"]["error_rate"] == 0.0
    assert result["totals"] == {"requests": 1000, "failures": 8, "error_rate": 0.008, "tasks_reporting": 4}


def test_summary_of_nothing_yet():
    assert progress.summary({}) == {
        "regions": {},
        "totals": {"requests": 0, "failures": 0, "error_rate": 0.0, "tasks_reporting": 0},
    }


# ---- S3: the progress objects (moto).


@pytest.fixture
def s3(moto):
    client = moto.client("s3", "eu-central-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    return client


def put(s3, key: str, body: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def put_progress(s3, run_id: str, region: str, task: str, requests: int, failures: int) -> None:
    totals = TaskProgress(requests=requests, failures=failures, iterations=requests // 2, updated_ms=1)
    put(s3, f"runs/{run_id}/records/{region}/{task}/progress.json", totals.to_json())


def test_s3_progress_sums_the_progress_objects_of_each_regions_tasks(s3):
    put_progress(s3, RUN_ID, "us-east-2", "0", 100, 1)
    put_progress(s3, RUN_ID, "us-east-2", "1", 50, 2)
    put_progress(s3, RUN_ID, "ap-northeast-1", "0", 20, 0)
    put(s3, f"runs/{RUN_ID}/records/us-east-2/0/1750000000000-0123456789ab.jsonl", '{"kind":"requests"}\n')
    # A task with records but no progress object yet is not counted; its region is known.
    put(s3, f"runs/{RUN_ID}/records/ca-central-1/0/1750000000000-0123456789ab.jsonl", '{"kind":"requests"}\n')
    put_progress(s3, "run-10", "us-east-2", "0", 999, 999)  # another run whose id starts the same
    put(s3, f"runs/{RUN_ID}/script.js", "export default function () {}")

    regions = progress.read_s3_progress(s3, BUCKET, RUN_ID)

    assert regions == {
        "us-east-2": RegionProgress(150, 3, 2),
        "ap-northeast-1": RegionProgress(20, 0, 1),
        "ca-central-1": RegionProgress(0, 0, 0),
    }


def test_s3_progress_of_a_run_without_records_is_empty(s3):
    assert progress.read_s3_progress(s3, BUCKET, RUN_ID) == {}


def test_a_malformed_progress_object_is_named(s3):
    put(s3, f"runs/{RUN_ID}/records/us-east-2/3/progress.json", "[]")
    key = f"runs/{RUN_ID}/records/us-east-2/3/progress.json"
    with pytest.raises(ProgressError, match=rf"s3://{BUCKET}/{key}: a JSON object"):
        progress.read_s3_progress(s3, BUCKET, RUN_ID)


def test_a_missing_bucket_is_an_error_not_an_empty_run(s3):
    with pytest.raises(s3.exceptions.NoSuchBucket):
        progress.read_s3_progress(s3, "no-such-bucket", RUN_ID)


def stubbed(service: str):
    client = boto3.client(service, region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def test_s3_listing_follows_continuation_tokens():
    s3, stubber = stubbed("s3")
    prefix = f"runs/{RUN_ID}/records/us-east-2/"
    request = {"Bucket": BUCKET, "Prefix": prefix, "Delimiter": "/"}
    stubber.add_response(
        "list_objects_v2",
        {"CommonPrefixes": [{"Prefix": f"{prefix}0/"}], "IsTruncated": True, "NextContinuationToken": "next"},
        request,
    )
    stubber.add_response(
        "list_objects_v2",
        {"CommonPrefixes": [{"Prefix": f"{prefix}1/"}], "IsTruncated": False},
        {**request, "ContinuationToken": "next"},
    )
    assert progress._folders(s3, BUCKET, prefix) == [f"{prefix}0/", f"{prefix}1/"]
    stubber.assert_no_pending_responses()


# ---- Timestream: one aggregate query (Stubber).


def row(*values):
    return {"Data": [{"NullValue": True} if value is None else {"ScalarValue": value} for value in values]}


def test_the_query_sums_the_runs_request_records_by_region():
    assert progress.timestream_query("results", "intervals", RUN_ID) == QUERY


def test_the_query_of_a_started_run_scans_only_from_15_minutes_before_its_start():
    query = progress.timestream_query("results", "intervals", RUN_ID, start_at_ms=1_750_000_900_000)
    assert "AND time >= from_milliseconds(1750000000000) GROUP BY region" in query


def test_identifiers_are_quoted_so_a_name_cannot_end_the_identifier():
    assert 'FROM "re""sults"."intervals"' in progress.timestream_query('re"sults', "intervals", RUN_ID)


def test_a_run_id_that_is_not_one_never_reaches_the_query():
    client, stubber = stubbed("timestream-query")
    with pytest.raises(ProgressError, match="is not a run id"):
        progress.read_timestream_progress(client, "results", "intervals", "x' OR '1'='1")
    stubber.assert_no_pending_responses()


def test_timestream_progress_reads_every_page():
    client, stubber = stubbed("timestream-query")
    # A query still running answers with a token and no rows; a region may come on any page.
    stubber.add_response(
        "query", {"QueryId": "q", "Rows": [], "ColumnInfo": COLUMNS, "NextToken": "1"}, {"QueryString": QUERY}
    )
    stubber.add_response(
        "query",
        {"QueryId": "q", "Rows": [row("us-east-2", "12345", "99", "3")], "ColumnInfo": COLUMNS, "NextToken": "2"},
        {"QueryString": QUERY, "NextToken": "1"},
    )
    stubber.add_response(
        "query",
        {"QueryId": "q", "Rows": [row("ap-northeast-1", "4100", None, "1")], "ColumnInfo": COLUMNS},
        {"QueryString": QUERY, "NextToken": "2"},
    )

    regions = progress.read_timestream_progress(client, "results", "intervals", RUN_ID)

    assert regions == {"us-east-2": RegionProgress(12345, 99, 3), "ap-northeast-1": RegionProgress(4100, 0, 1)}
    stubber.assert_no_pending_responses()


def test_timestream_progress_of_a_started_run_sends_the_time_bound():
    client, stubber = stubbed("timestream-query")
    query = progress.timestream_query("results", "intervals", RUN_ID, 1_750_000_900_000)
    stubber.add_response(
        "query", {"QueryId": "q", "Rows": [row("eu-west-1", "10", "1", "1")], "ColumnInfo": COLUMNS}, {"QueryString": query}
    )
    regions = progress.read_timestream_progress(client, "results", "intervals", RUN_ID, 1_750_000_900_000)
    assert regions == {"eu-west-1": RegionProgress(10, 1, 1)}
    stubber.assert_no_pending_responses()


def test_timestream_progress_before_any_record_is_empty():
    client, stubber = stubbed("timestream-query")
    stubber.add_response("query", {"QueryId": "q", "Rows": [], "ColumnInfo": COLUMNS}, {"QueryString": QUERY})
    assert progress.read_timestream_progress(client, "results", "intervals", RUN_ID) == {}
    stubber.assert_no_pending_responses()
