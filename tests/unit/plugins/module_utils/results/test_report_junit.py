"""report.xml: the run as JUnit XML, valid against the schema CI systems read (data/junit.xsd).

The summaries are the report page's test summaries (test_report_html): a run that failed a
threshold, one still running, one without data; and one whose task lost results.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree
from test_report_html import HOSTILE
from test_report_html import empty_summary
from test_report_html import full_summary
from test_report_html import partial_summary

from results.report_junit import render

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit.xsd")))


def parsed(text: str) -> etree._Element:
    document = etree.fromstring(text.encode())
    SCHEMA.assertValid(document)
    return document


def cases(document: etree._Element) -> dict[str, etree._Element]:
    return {case.get("name"): case for case in document.iter("testcase")}


def test_a_breached_threshold_fails_its_case_with_the_expression_value_and_limit():
    document = parsed(render(full_summary(), {}))

    suite = document.find("testsuite")
    assert suite.get("name") == "run nightly-42" and suite.get("timestamp") == "2025-11-28T08:53:20"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "1", "0")  # 3 thresholds, 4 tasks
    breached = cases(document)[f"http_req_failed{{name:{HOSTILE}}} rate<0.01"]
    assert breached.find("failure").get("message") == f"http_req_failed{{name:{HOSTILE}}} rate<0.01 breached: measured 0.04, limit 0.01"
    assert breached.get("classname") == "thresholds.constellation_thresholds"
    assert cases(document)["http_req_duration{region:us-east-2} p(95)<500"].find("failure") is None
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["verdict"] == "fail" and properties["requests"] == str(full_summary()["overall"]["requests"])


def test_a_task_that_did_not_run_its_load_or_lost_results_fails_its_case():
    summary = full_summary()
    summary["accounting"] = {"tasks": {"us-east-2": {"1": {"k6_requests": 386, "stored_requests": 60,
                                                           "missing": ["326 of the 386 requests k6 counted are not in the results store"]}}}}
    failed = {("ap-southeast-1", "0"): "ap-southeast-1 task 0 ended with exit 107 (ScriptException): its share of the load may be missing"}

    document = parsed(render(summary, failed))

    by_name = cases(document)
    assert by_name["ap-southeast-1 task 0"].find("failure").get("message").startswith("ap-southeast-1 task 0 ended with exit 107")
    assert by_name["us-east-2 task 1"].find("failure").get("message") == (
        "us-east-2 task 1: 326 of the 386 requests k6 counted are not in the results store")
    assert by_name["us-east-2 task 0"].find("failure") is None and "exit 0" in by_name["us-east-2 task 0"].find("system-out").text
    assert by_name["us-east-2 task 1"].get("classname") == "tasks.us-east-2"
    assert document.find("testsuite").get("failures") == "3"


def test_tasks_still_running_and_thresholds_without_data_are_skipped_not_passed():
    running = parsed(render(partial_summary(), {}))
    assert [c.get("name") for c in running.iter("testcase") if c.find("skipped") is not None] == [
        "ap-southeast-1 task 0", "eu-west-1 task 0", "us-east-2 task 1"]

    empty = parsed(render(empty_summary(), {}))
    assert empty.find("testsuite").get("skipped") == "5" and empty.find("testsuite").get("failures") == "0"
    assert empty.find("testsuite").get("time") == "0"


def test_a_start_with_milliseconds_is_given_to_the_second():
    summary = full_summary()
    summary.update(start_at_ms=summary["start_at_ms"] + 44, start_at="2025-11-28T08:53:20.044Z")  # as the orchestrator decides it
    assert parsed(render(summary, {})).find("testsuite").get("timestamp") == "2025-11-28T08:53:20"


def test_same_summary_same_bytes():
    assert render(full_summary(), {}) == render(copy.deepcopy(full_summary()), {})


def test_the_schema_refuses_what_ci_systems_would_not_read():
    """The negative control: the validator above can fail."""
    for broken in (
        render(full_summary(), {}).replace('<testcase classname="tasks.eu-west-1" name="eu-west-1 task 0"', '<testcase classname="x"'),
        render(full_summary(), {}).replace('tests="7"', 'tests="seven"', 2),
        render(full_summary(), {}).replace('timestamp="2025-11-28T08:53:20"', 'timestamp="yesterday"'),
    ):
        with pytest.raises(etree.DocumentInvalid):
            SCHEMA.assertValid(etree.fromstring(broken.encode()))
