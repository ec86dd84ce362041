# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's verdict as JUnit XML (``report.xml``), the file CI systems read.

Jenkins (the JUnit plugin), GitLab (``artifacts:reports:junit``), GitHub Actions' test reporters
and Azure DevOps (``PublishTestResults``) all read the same shape: ``<testsuites>`` holding a
``<testsuite>`` of ``<testcase>`` elements, a failing case carrying a ``<failure message=...>``.
One suite per run; in it one case per threshold (its failure: the expression, the measured value
and the limit) and one per planned task (its failure: k6 did not run its share of the load, or
the task's results are missing from the results store). A task still running when the report was
made is ``skipped``. The whole run's verdict and counts are the suite's ``<properties>``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import xml.etree.ElementTree as ET

from .thresholds import breach_message

SUITES_NAME = "constellation.loadtest"


def _show(value):
    if value is None:
        return "no data"
    if isinstance(value, float):
        return "%.4g" % value
    return str(value)


def _seconds(summary):
    measured = summary.get("measured_seconds")
    return "%.3f" % measured if isinstance(measured, (int, float)) else "0"


def _timestamp(summary):
    """The run's start in the one form the schema takes: UTC, to the second, no zone."""
    start_ms = summary.get("start_at_ms")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((start_ms or 0) / 1000))


def _threshold_case(threshold):
    case = ET.Element(
        "testcase",
        {"classname": "thresholds." + threshold.get("source", "thresholds"), "name": "%s %s" % (threshold["name"], threshold["expression"])},
    )
    if threshold.get("ok") is None:
        ET.SubElement(case, "skipped", {"message": "not judged: no data matched it yet"})
    elif not threshold["ok"]:
        ET.SubElement(case, "failure", {"type": "threshold", "message": breach_message(threshold)})
    return case


def _task_cases(summary, task_failures):
    """One case per planned task, in region and task order."""
    exit_codes = summary.get("exit_codes") or {}
    accounting = (summary.get("accounting") or {}).get("tasks") or {}
    cases = []
    for region, planned in sorted((summary.get("plan") or {}).items()):
        for task in (str(index) for index in range(planned.get("tasks") or 0)):
            case = ET.Element("testcase", {"classname": "tasks." + region, "name": "%s task %s" % (region, task)})
            code = exit_codes.get(region, {}).get(task)
            counts = accounting.get(region, {}).get(task, {})
            failures = []
            if (region, task) in task_failures:
                failures.append(task_failures[(region, task)])
            failures.extend("%s task %s: %s" % (region, task, reason) for reason in counts.get("missing") or [])
            if failures:
                failure = ET.SubElement(case, "failure", {"type": "task", "message": failures[0]})
                failure.text = "\n".join(failures)
            elif code is None:
                ET.SubElement(
                    case, "skipped", {"message": "no end reported yet" if not summary.get("complete") else "the task reported no end"}
                )
            else:
                out = ET.SubElement(case, "system-out")
                out.text = "exit %s; requests counted by k6: %s, in the results store: %s" % (
                    code, _show(counts.get("k6_requests")), _show(counts.get("stored_requests")))
            cases.append(case)
    return cases


def _properties(summary):
    overall = summary.get("overall") or {}
    values = [
        ("verdict", summary.get("verdict")),
        ("deployment", summary.get("deployment")),
        ("results_store", summary.get("results_store")),
        ("start_at", summary.get("start_at")),
        ("requests", overall.get("requests")),
        ("rps", overall.get("rps")),
        ("error_rate", overall.get("error_rate")),
        ("p95_ms", overall.get("p95")),
        ("p99_ms", overall.get("p99")),
    ]
    properties = ET.Element("properties")
    for name, value in values:
        if value is not None:
            ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    return properties


def render(summary, task_failures):
    """``report.xml`` of ``summary`` (summary.json's content) as text.

    ``task_failures`` maps ``(region, task)`` to why that task failed (its exit code, described);
    the tasks' missing results come from the summary's accounting.
    """
    cases = [_threshold_case(threshold) for threshold in summary.get("thresholds") or []]
    cases.extend(_task_cases(summary, task_failures))
    failures = sum(1 for case in cases if case.find("failure") is not None)
    skipped = sum(1 for case in cases if case.find("skipped") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    suites = ET.Element("testsuites", dict(counts, name=SUITES_NAME, time=_seconds(summary)))
    suite = ET.SubElement(
        suites,
        "testsuite",
        dict(counts, name="run %s" % summary["run_id"], skipped=str(skipped), time=_seconds(summary), id="0",
             hostname=summary.get("deployment") or SUITES_NAME, package=SUITES_NAME,
             timestamp=_timestamp(summary)),
    )
    suite.append(_properties(summary))
    suite.extend(cases)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
