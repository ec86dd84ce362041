"""Unit tests for plugins/module_utils/aws/log_group.py: validation, the calls made to CloudWatch Logs, the result."""

from __future__ import annotations


import pytest
from botocore.exceptions import ClientError


from ansible_collections.constellation.loadtest.plugins.module_utils.aws import log_group as lg

NAME = "/ecs/x"
PREFIX = "arn:aws:logs:eu-central-1:123456789012:log-group:"
ARN = f"{PREFIX}{NAME}"
WRITES = {"create_log_group", "put_retention_policy", "tag_resource", "untag_resource", "delete_log_group"}


def client_error(code: str, operation: str) -> ClientError:
    response = {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, operation)


class FakePaginator:
    """What amazon.aws's _paginated_query uses: ``paginate(**params).build_full_result()``."""

    def __init__(self, logs: FakeLogs, name: str):
        self.logs = logs
        self.name = name

    def paginate(self, **params):
        self.logs.calls.append((f"paginate:{self.name}", params))
        assert self.name == "describe_log_groups" and set(params) == {"logGroupNamePrefix"}
        prefix = params["logGroupNamePrefix"]
        logs = self.logs

        class PageIterator:
            def build_full_result(self):
                groups = [dict(group) for name, group in sorted(logs.groups.items()) if name.startswith(prefix)]
                return {"logGroups": groups}

        return PageIterator()


class FakeLogs:
    """An in-memory CloudWatch Logs that records every call; the ARNs and errors are those of the real API."""

    def __init__(self, groups: dict[str, dict] | None = None, delete_error: ClientError | None = None):
        self.groups: dict[str, dict] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, dict]] = []
        self.delete_error = delete_error
        for name, spec in (groups or {}).items():
            self.add(name, spec.get("retention"), spec.get("tags"))

    def add(self, name: str, retention: int | None = None, tags: dict[str, str] | None = None) -> None:
        group = {
            "logGroupName": name,
            "creationTime": 1700000000000,
            "metricFilterCount": 0,
            "arn": f"{PREFIX}{name}:*",
            "logGroupArn": f"{PREFIX}{name}",
            "storedBytes": 0,
        }
        if retention is not None:
            group["retentionInDays"] = retention
        self.groups[name] = group
        self.tags[f"{PREFIX}{name}"] = dict(tags or {})

    @property
    def writes(self) -> list[tuple[str, dict]]:
        return [call for call in self.calls if call[0] in WRITES]

    def get_paginator(self, name: str) -> FakePaginator:
        return FakePaginator(self, name)

    def record(self, operation: str, aws_retry, params: dict) -> None:
        assert aws_retry is True, f"{operation} called without aws_retry=True"
        self.calls.append((operation, params))

    def tagged(self, arn: str) -> dict[str, str]:
        # The tagging operations refuse the ARN DescribeLogGroups gives in ``arn`` (ending ':*').
        if arn.endswith(":*"):
            raise client_error("InvalidParameterException", "TagResource")
        if arn not in self.tags:
            raise client_error("ResourceNotFoundException", "TagResource")
        return self.tags[arn]

    def list_tags_for_resource(self, resourceArn, aws_retry=None):
        self.record("list_tags_for_resource", aws_retry, {"resourceArn": resourceArn})
        return {"tags": dict(self.tagged(resourceArn))}

    def create_log_group(self, logGroupName, tags=None, aws_retry=None):
        params = {"logGroupName": logGroupName}
        if tags is not None:
            params["tags"] = tags
        self.record("create_log_group", aws_retry, params)
        if logGroupName in self.groups:
            raise client_error("ResourceAlreadyExistsException", "CreateLogGroup")
        self.add(logGroupName, None, tags)
        return {}

    def put_retention_policy(self, logGroupName, retentionInDays, aws_retry=None):
        params = {"logGroupName": logGroupName, "retentionInDays": retentionInDays}
        self.record("put_retention_policy", aws_retry, params)
        self.groups[logGroupName]["retentionInDays"] = retentionInDays
        return {}

    def tag_resource(self, resourceArn, tags, aws_retry=None):
        self.record("tag_resource", aws_retry, {"resourceArn": resourceArn, "tags": tags})
        self.tagged(resourceArn).update(tags)
        return {}

    def untag_resource(self, resourceArn, tagKeys, aws_retry=None):
        self.record("untag_resource", aws_retry, {"resourceArn": resourceArn, "tagKeys": tagKeys})
        current = self.tagged(resourceArn)
        for key in tagKeys:
            current.pop(key, None)
        return {}

    def delete_log_group(self, logGroupName, aws_retry=None):
        self.record("delete_log_group", aws_retry, {"logGroupName": logGroupName})
        if self.delete_error:
            raise self.delete_error
        if logGroupName not in self.groups:
            raise client_error("ResourceNotFoundException", "DeleteLogGroup")
        del self.groups[logGroupName]
        del self.tags[f"{PREFIX}{logGroupName}"]
        return {}


# Validation


@pytest.mark.parametrize(
    ("name", "retention", "message"),
    [
        ("/ecs/load test", 7, r"^log_group\.name '/ecs/load test' is not a log group name"),
        ("", None, r"^log_group\.name '' is not a log group name"),
        (None, None, r"^log_group\.name None is not a log group name"),
        ("x" * 513, None, r"^log_group\.name 'x{513}' is not a log group name"),
        ("/ecs/x:y", None, r"^log_group\.name '/ecs/x:y' is not"),
        ("/ecs/x", 10, r"^log_group\.retention_days 10 is not a retention CloudWatch Logs takes: one of 1, 3, 5, 7,"),
        ("/ecs/x", 0, r"^log_group\.retention_days 0 is not a retention"),
        ("/ecs/x", -7, r"^log_group\.retention_days -7 is not a retention"),
    ],
)
def test_invalid_input_is_refused_naming_the_field_and_value(name, retention, message):
    with pytest.raises(lg.LogGroupError, match=message):
        lg.validate(name, retention)


@pytest.mark.parametrize("retention", [None, 1, 7, 14, 365, 3653])
def test_a_valid_name_with_a_retention_logs_takes_or_none_is_accepted(retention):
    lg.validate("/constellation/load-test_1.#x", retention)
    lg.validate("x" * 512, retention)


# ARNs


def test_the_tagging_arn_is_log_group_arn_or_arn_without_its_wildcard():
    assert lg.tagging_arn({"logGroupArn": ARN, "arn": f"{ARN}:*"}) == ARN
    assert lg.tagging_arn({"arn": f"{ARN}:*"}) == ARN
    assert lg.tagging_arn({"arn": ARN}) == ARN


# Present


def test_a_new_group_is_created_with_its_tags_then_given_its_retention():
    logs = FakeLogs()
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, {"team": "qa", "constellation:deployment": "d"}, purge_tags=True)
    assert group.changed
    assert logs.writes == [
        ("create_log_group", {"logGroupName": NAME, "tags": {"team": "qa", "constellation:deployment": "d"}}),
        ("put_retention_policy", {"logGroupName": NAME, "retentionInDays": 7}),
    ]
    assert logs.groups[NAME]["retentionInDays"] == 7
    assert logs.tags[ARN] == {"team": "qa", "constellation:deployment": "d"}
    expected = {
        "log_group_name": NAME,
        "arn": ARN,
        "retention_in_days": 7,
        "tags": {"team": "qa", "constellation:deployment": "d"},
    }
    assert result["log_group"] == expected
    assert result["diff"] == {"before": {}, "after": expected}


def test_a_new_group_without_tags_or_retention_is_created_bare_and_kept_forever():
    logs = FakeLogs()
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(None, None, purge_tags=True)
    assert group.changed
    assert logs.writes == [("create_log_group", {"logGroupName": NAME})]
    assert result["log_group"] == {"log_group_name": NAME, "arn": ARN, "retention_in_days": None, "tags": {}}


def test_an_identical_group_is_left_alone():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, {"team": "qa"}, purge_tags=True)
    assert not group.changed and logs.writes == []
    assert result["diff"]["before"] == result["diff"]["after"] == result["log_group"]
    assert result["log_group"] == {"log_group_name": NAME, "arn": ARN, "retention_in_days": 7, "tags": {"team": "qa"}}


def test_a_second_run_after_creation_changes_nothing():
    logs = FakeLogs()
    lg.LogGroup(logs, NAME, check_mode=False).ensure_present(14, {"team": "qa"}, purge_tags=True)
    written = len(logs.writes)
    again = lg.LogGroup(logs, NAME, check_mode=False)
    again.ensure_present(14, {"team": "qa"}, purge_tags=True)
    assert not again.changed and len(logs.writes) == written


def test_a_different_retention_is_put_and_nothing_else():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(14, {"team": "qa"}, purge_tags=True)
    assert group.changed
    assert logs.writes == [("put_retention_policy", {"logGroupName": NAME, "retentionInDays": 14})]
    assert result["diff"]["before"]["retention_in_days"] == 7
    assert result["diff"]["after"]["retention_in_days"] == 14 == result["log_group"]["retention_in_days"]


def test_a_retention_on_a_group_kept_forever_is_put():
    logs = FakeLogs({NAME: {}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    group.ensure_present(30, None, purge_tags=True)
    assert group.changed and logs.writes == [("put_retention_policy", {"logGroupName": NAME, "retentionInDays": 30})]


def test_no_retention_leaves_the_retention_as_it_is():
    logs = FakeLogs({NAME: {"retention": 7}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(None, {}, purge_tags=True)
    assert not group.changed and logs.writes == []
    assert result["log_group"]["retention_in_days"] == 7


def test_a_missing_tag_is_set_with_the_arn_the_tagging_operations_take():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, {"team": "qa", "cost": "load"}, purge_tags=True)
    assert group.changed
    assert logs.writes == [("tag_resource", {"resourceArn": ARN, "tags": {"cost": "load"}})]
    assert all(not call[1].get("resourceArn", "").endswith(":*") for call in logs.calls)
    assert logs.tags[ARN] == {"team": "qa", "cost": "load"}
    assert result["diff"]["before"]["tags"] == {"team": "qa"}
    assert result["log_group"]["tags"] == {"team": "qa", "cost": "load"}


def test_a_changed_tag_value_is_set_again():
    logs = FakeLogs({NAME: {"tags": {"team": "qa"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    group.ensure_present(None, {"team": "ops"}, purge_tags=True)
    assert group.changed and logs.writes == [("tag_resource", {"resourceArn": ARN, "tags": {"team": "ops"}})]


def test_an_extra_tag_is_removed_when_purging():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa", "old": "x"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, {"team": "qa"}, purge_tags=True)
    assert group.changed
    assert logs.writes == [("untag_resource", {"resourceArn": ARN, "tagKeys": ["old"]})]
    assert logs.tags[ARN] == {"team": "qa"} == result["log_group"]["tags"]


def test_an_extra_tag_is_kept_when_not_purging():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa", "old": "x"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, {"team": "qa"}, purge_tags=False)
    assert not group.changed and logs.writes == []
    assert result["log_group"]["tags"] == {"team": "qa", "old": "x"}


def test_an_extra_tag_is_kept_and_a_new_one_set_when_not_purging():
    logs = FakeLogs({NAME: {"tags": {"old": "x"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(None, {"new": "y"}, purge_tags=False)
    assert group.changed and logs.writes == [("tag_resource", {"resourceArn": ARN, "tags": {"new": "y"}})]
    assert result["log_group"]["tags"] == {"old": "x", "new": "y"}


def test_tags_none_leaves_the_tags_alone_even_when_purging():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa", "old": "x"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, None, purge_tags=True)
    assert not group.changed and logs.writes == []
    assert result["log_group"]["tags"] == {"team": "qa", "old": "x"}


def test_empty_tags_remove_every_tag_when_purging():
    logs = FakeLogs({NAME: {"tags": {"team": "qa", "old": "x"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(None, {}, purge_tags=True)
    assert group.changed
    ((operation, params),) = logs.writes
    assert operation == "untag_resource" and params["resourceArn"] == ARN
    assert sorted(params["tagKeys"]) == ["old", "team"]
    assert result["log_group"]["tags"] == {}


def test_tags_and_retention_are_both_brought_in_line():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"old": "x"}}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    group.ensure_present(14, {"new": "y"}, purge_tags=True)
    assert group.changed
    assert sorted(call[0] for call in logs.writes) == ["put_retention_policy", "tag_resource", "untag_resource"]
    assert logs.tags[ARN] == {"new": "y"} and logs.groups[NAME]["retentionInDays"] == 14


def test_the_exact_group_is_picked_among_those_its_name_prefixes():
    other_arn = f"{PREFIX}{NAME}-other"
    logs = FakeLogs({f"{NAME}-other": {"retention": 1, "tags": {"other": "1"}}, NAME: {"retention": 7}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, {"team": "qa"}, purge_tags=True)
    assert logs.writes == [("tag_resource", {"resourceArn": ARN, "tags": {"team": "qa"}})]
    assert result["diff"]["before"] == {"log_group_name": NAME, "arn": ARN, "retention_in_days": 7, "tags": {}}
    assert logs.tags[other_arn] == {"other": "1"} and logs.groups[f"{NAME}-other"]["retentionInDays"] == 1
    assert ("list_tags_for_resource", {"resourceArn": other_arn}) not in logs.calls
    assert ("paginate:describe_log_groups", {"logGroupNamePrefix": NAME}) in logs.calls


def test_a_group_is_created_when_only_a_longer_name_it_prefixes_exists():
    logs = FakeLogs({f"{NAME}-other": {"retention": 1}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_present(7, None, purge_tags=True)
    assert group.changed and logs.writes[0] == ("create_log_group", {"logGroupName": NAME})
    assert result["diff"]["before"] == {} and result["log_group"]["arn"] == ARN


# Check mode


def test_check_mode_reports_a_creation_without_making_it_nor_an_arn():
    logs = FakeLogs()
    group = lg.LogGroup(logs, NAME, check_mode=True)
    result = group.ensure_present(7, {"team": "qa"}, purge_tags=True)
    assert group.changed and logs.writes == [] and logs.groups == {}
    assert result["log_group"] == {"log_group_name": NAME, "arn": None, "retention_in_days": 7, "tags": {"team": "qa"}}
    assert result["diff"]["before"] == {}


@pytest.mark.parametrize(
    ("retention", "tags", "purge"),
    [(14, {"team": "qa"}, True), (7, {"team": "qa", "new": "1"}, True), (7, {}, True), (14, {"new": "1"}, False)],
)
def test_check_mode_reports_an_update_without_making_it(retention, tags, purge):
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa"}}})
    group = lg.LogGroup(logs, NAME, check_mode=True)
    result = group.ensure_present(retention, tags, purge)
    assert group.changed and logs.writes == []
    assert logs.groups[NAME]["retentionInDays"] == 7 and logs.tags[ARN] == {"team": "qa"}
    assert result["log_group"]["arn"] == ARN and result["log_group"]["retention_in_days"] == retention
    assert result["log_group"]["tags"] == (dict({"team": "qa"}, **tags) if not purge else tags)


def test_check_mode_on_an_identical_group_reports_no_change():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa"}}})
    group = lg.LogGroup(logs, NAME, check_mode=True)
    group.ensure_present(7, {"team": "qa"}, purge_tags=True)
    assert not group.changed and logs.writes == []


def test_check_mode_reports_a_deletion_without_making_it():
    logs = FakeLogs({NAME: {"retention": 7}})
    group = lg.LogGroup(logs, NAME, check_mode=True)
    result = group.ensure_absent()
    assert group.changed and logs.writes == [] and NAME in logs.groups
    assert result["diff"]["before"]["log_group_name"] == NAME and result["diff"]["after"] == {}


# Absent


def test_absent_deletes_the_group_once():
    logs = FakeLogs({NAME: {"retention": 7, "tags": {"team": "qa"}}, f"{NAME}-other": {}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_absent()
    assert group.changed and logs.writes == [("delete_log_group", {"logGroupName": NAME})]
    assert list(logs.groups) == [f"{NAME}-other"]
    assert result["diff"] == {
        "before": {"log_group_name": NAME, "arn": ARN, "retention_in_days": 7, "tags": {"team": "qa"}},
        "after": {},
    }
    again = lg.LogGroup(logs, NAME, check_mode=False)
    result = again.ensure_absent()
    assert not again.changed and len(logs.writes) == 1
    assert result["diff"] == {"before": {}, "after": {}}


def test_absent_leaves_a_longer_name_it_prefixes_alone():
    logs = FakeLogs({f"{NAME}-other": {}})
    group = lg.LogGroup(logs, NAME, check_mode=False)
    group.ensure_absent()
    assert not group.changed and logs.writes == [] and f"{NAME}-other" in logs.groups


def test_a_group_deleted_in_the_meantime_is_not_an_error():
    logs = FakeLogs({NAME: {}}, delete_error=client_error("ResourceNotFoundException", "DeleteLogGroup"))
    group = lg.LogGroup(logs, NAME, check_mode=False)
    result = group.ensure_absent()
    assert group.changed and logs.writes == [("delete_log_group", {"logGroupName": NAME})]
    assert result["diff"]["after"] == {}


def test_other_delete_errors_are_raised():
    logs = FakeLogs({NAME: {}}, delete_error=client_error("AccessDeniedException", "DeleteLogGroup"))
    group = lg.LogGroup(logs, NAME, check_mode=False)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        group.ensure_absent()
