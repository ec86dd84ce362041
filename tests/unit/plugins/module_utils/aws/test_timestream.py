"""Unit tests for plugins/module_utils/aws/timestream.py: the comparisons the modules decide on."""

from __future__ import annotations


import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws


from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.constellation.loadtest.plugins.module_utils.aws import timestream

KEY_ARN = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOCATION = {"bucket_name": "rejected", "object_key_prefix": "late/", "encryption_option": "SSE_S3", "kms_key_id": None}
LOCATION_SHAPE = {
    "S3Configuration": {"BucketName": "rejected", "ObjectKeyPrefix": "late/", "EncryptionOption": "SSE_S3"},
}
RETENTION = {"MemoryStoreRetentionPeriodInHours": 12, "MagneticStoreRetentionPeriodInDays": 30}


def table(retention=None, writes=None, tags=None):
    return {
        "Arn": "arn:aws:timestream:eu-central-1:123456789012:database/db/table/t",
        "DatabaseName": "db",
        "TableName": "t",
        "RetentionProperties": retention or RETENTION,
        "MagneticStoreWriteProperties": {} if writes is None else writes,
        "Tags": tags or {},
    }


def table_params(**overrides):
    params = {
        "database_name": "results",
        "table_name": "intervals",
        "memory_store_retention_hours": None,
        "magnetic_store_retention_days": None,
        "enable_magnetic_store_writes": None,
        "magnetic_store_rejected_data_location": None,
    }
    params.update(overrides)
    return params


# ---- validation


@pytest.mark.parametrize("name", ["abc", "a.b-c_D9", "x" * 256])
def test_valid_names_pass(name):
    assert timestream.name_errors(database_name=name) == []


@pytest.mark.parametrize("name", ["ab", "x" * 257, "has space", "slash/ed", "ümlaut"])
def test_invalid_names_name_option_and_value(name):
    [error] = timestream.name_errors(database_name=name)
    assert error.startswith("database_name must be 3 to 256 characters")
    assert repr(name) in error


@pytest.mark.parametrize(
    "option, value",
    [("memory_store_retention_hours", 1), ("memory_store_retention_hours", 8766),
     ("magnetic_store_retention_days", 1), ("magnetic_store_retention_days", 73000)],
)
def test_retention_bounds_are_inclusive(option, value):
    assert timestream.table_option_errors(table_params(**{option: value})) == []


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("memory_store_retention_hours", 0, "memory_store_retention_hours must be between 1 and 8766, got 0."),
        ("memory_store_retention_hours", 8767, "memory_store_retention_hours must be between 1 and 8766, got 8767."),
        ("magnetic_store_retention_days", 0, "magnetic_store_retention_days must be between 1 and 73000, got 0."),
        (
            "magnetic_store_retention_days",
            73001,
            "magnetic_store_retention_days must be between 1 and 73000, got 73001.",
        ),
    ],
)
def test_retention_out_of_range_names_option_and_value(option, value, message):
    assert timestream.table_option_errors(table_params(**{option: value})) == [message]


def test_every_table_error_is_reported_at_once():
    errors = timestream.table_option_errors(
        table_params(table_name="x", memory_store_retention_hours=0, magnetic_store_rejected_data_location=LOCATION)
    )
    assert len(errors) == 3


@pytest.mark.parametrize("enable", [None, False])
def test_rejected_data_location_needs_magnetic_store_writes(enable):
    errors = timestream.table_option_errors(
        table_params(enable_magnetic_store_writes=enable, magnetic_store_rejected_data_location=LOCATION)
    )
    assert errors == ["magnetic_store_rejected_data_location is only used with enable_magnetic_store_writes=true."]


# ---- database KMS key


@pytest.mark.parametrize("desired", [KEY_ARN, "1234abcd-12ab-34cd-56ef-1234567890ab"])
def test_kms_key_given_by_arn_or_id_matches_the_reported_arn(desired):
    assert timestream.kms_key_matches(KEY_ARN, desired)


@pytest.mark.parametrize(
    "current, desired", [(KEY_ARN, "other-key"), (KEY_ARN, "alias/mine"), (None, "any"), (KEY_ARN, "abcd")]
)
def test_other_kms_keys_do_not_match(current, desired):
    assert not timestream.kms_key_matches(current, desired)


# ---- table retention


def test_new_table_without_retention_options_takes_the_aws_default():
    assert timestream.retention_changes(None, None, None) is None


def test_new_table_fills_the_retention_value_left_out_with_the_aws_default():
    assert timestream.retention_changes(None, 24, None) == {
        "MemoryStoreRetentionPeriodInHours": 24,
        "MagneticStoreRetentionPeriodInDays": 73000,
    }


def test_unchanged_retention_is_not_sent():
    assert timestream.retention_changes(table(), 12, 30) is None
    assert timestream.retention_changes(table(), None, None) is None


def test_changing_one_retention_value_keeps_the_other():
    assert timestream.retention_changes(table(), None, 365) == {
        "MemoryStoreRetentionPeriodInHours": 12,
        "MagneticStoreRetentionPeriodInDays": 365,
    }


# ---- magnetic store writes


def test_rejected_data_location_drops_unset_fields():
    assert timestream.rejected_data_location(LOCATION) == LOCATION_SHAPE


@pytest.mark.parametrize("writes", [{}, {"EnableMagneticStoreWrites": False}])
def test_disabled_writes_stay_untouched_unless_enabled(writes):
    assert timestream.magnetic_store_writes_changes(table(writes=writes), None, None) is None
    assert timestream.magnetic_store_writes_changes(table(writes=writes), False, None) is None
    enabled = timestream.magnetic_store_writes_changes(table(writes=writes), True, None)
    assert enabled == {"EnableMagneticStoreWrites": True}


def test_enabling_writes_on_a_new_table_with_a_location():
    assert timestream.magnetic_store_writes_changes(None, True, LOCATION) == {
        "EnableMagneticStoreWrites": True,
        "MagneticStoreRejectedDataLocation": LOCATION_SHAPE,
    }


def test_enabled_writes_keep_their_location_when_none_is_given():
    current = table(writes={"EnableMagneticStoreWrites": True, "MagneticStoreRejectedDataLocation": LOCATION_SHAPE})
    assert timestream.magnetic_store_writes_changes(current, None, None) is None
    assert timestream.magnetic_store_writes_changes(current, True, None) is None
    assert timestream.magnetic_store_writes_changes(current, True, LOCATION) is None


def test_a_different_location_is_sent_whole():
    current = table(writes={"EnableMagneticStoreWrites": True, "MagneticStoreRejectedDataLocation": LOCATION_SHAPE})
    moved = dict(LOCATION, object_key_prefix=None)
    assert timestream.magnetic_store_writes_changes(current, True, moved) == {
        "EnableMagneticStoreWrites": True,
        "MagneticStoreRejectedDataLocation": {
            "S3Configuration": {"BucketName": "rejected", "EncryptionOption": "SSE_S3"},
        },
    }


def test_disabling_enabled_writes():
    current = table(writes={"EnableMagneticStoreWrites": True, "MagneticStoreRejectedDataLocation": LOCATION_SHAPE})
    assert timestream.magnetic_store_writes_changes(current, False, None) == {"EnableMagneticStoreWrites": False}


# ---- what check mode reports


def test_planned_new_table_shows_aws_defaults_and_tags():
    planned = timestream.planned_table(None, "db", "t", None, None, {"a": "1"})
    assert planned == {
        "DatabaseName": "db",
        "TableName": "t",
        "RetentionProperties": timestream.DEFAULT_RETENTION,
        "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": False},
        "Tags": {"a": "1"},
    }


def test_planned_table_overlays_changes_without_touching_current():
    current = table(tags={"a": "1"})
    retention = {"MemoryStoreRetentionPeriodInHours": 1, "MagneticStoreRetentionPeriodInDays": 2}
    planned = timestream.planned_table(current, "db", "t", retention, None, {"b": "2"})
    assert planned["RetentionProperties"] == retention
    assert planned["MagneticStoreWriteProperties"] == {}
    assert planned["Arn"] == current["Arn"]
    assert planned["Tags"] == {"b": "2"}
    assert current["Tags"] == {"a": "1"}


def test_snake_case_keeps_tag_keys():
    resource = {
        "TableName": "t",
        "RetentionProperties": {"MemoryStoreRetentionPeriodInHours": 1},
        "Tags": {"CamelKey": "v"},
    }
    assert timestream.snake_case(resource) == {
        "table_name": "t",
        "retention_properties": {"memory_store_retention_period_in_hours": 1},
        "tags": {"CamelKey": "v"},
    }
    assert timestream.snake_case(None) == {}


# ---- service calls, against small fakes


class FakeClient:
    """Records calls; each method returns the next canned response for it (or raises it)."""

    def __init__(self, **responses):
        self.responses = responses
        self.calls = []

    def __getattr__(self, operation):
        def call(aws_retry=False, **request):
            assert aws_retry, f"{operation} was called without aws_retry=True"
            self.calls.append((operation, request))
            response = self.responses[operation].pop(0)
            if isinstance(response, Exception):
                raise response
            return response

        return call


def not_found(operation):
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, operation)


def test_list_table_names_follows_next_token():
    client = FakeClient(list_tables=[
        {"Tables": [{"TableName": "a"}, {"TableName": "b"}], "NextToken": "page2"},
        {"Tables": [{"TableName": "c"}]},
    ])
    assert timestream.list_table_names(client, "db") == ["a", "b", "c"]
    assert client.calls[1] == ("list_tables", {"DatabaseName": "db", "NextToken": "page2"})


def test_missing_resources_read_as_none():
    client = FakeClient(describe_database=[not_found("DescribeDatabase")], describe_table=[not_found("DescribeTable")])
    assert timestream.get_database(client, "db") is None
    assert timestream.get_table(client, "db", "t") is None


def test_other_errors_are_not_swallowed():
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeDatabase")
    with pytest.raises(ClientError):
        timestream.get_database(FakeClient(describe_database=[denied]), "db")


def test_deleting_what_is_already_gone_succeeds():
    client = FakeClient(delete_table=[not_found("DeleteTable")], delete_database=[not_found("DeleteDatabase")])
    timestream.delete_table(client, "db", "t")
    timestream.delete_database(client, "db")


def test_update_table_always_sends_retention():
    client = FakeClient(update_table=[{}])
    writes = {"EnableMagneticStoreWrites": True}
    timestream.update_table(client, table(), None, writes)
    assert client.calls == [("update_table", {
        "DatabaseName": "db",
        "TableName": "t",
        "RetentionProperties": table()["RetentionProperties"],
        "MagneticStoreWriteProperties": writes,
    })]


def test_update_tags_untags_then_tags_and_skips_empty_calls():
    client = FakeClient(untag_resource=[{}], tag_resource=[{}])
    timestream.update_tags(client, "arn", {"a": "1"}, ["b"])
    assert [call[0] for call in client.calls] == ["untag_resource", "tag_resource"]
    timestream.update_tags(client, "arn", {}, [])
    assert len(client.calls) == 2


# ---- the real-AWS path: endpoint discovery stays on


def test_service_calls_work_through_endpoint_discovery(monkeypatch):
    """Without endpoint_url botocore must discover the endpoint first, as real AWS requires."""
    for variable, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    targets = []

    def record_target(request, **kwargs):
        targets.append(request.headers["X-Amz-Target"].decode())

    with mock_aws():
        raw = boto3.client("timestream-write", region_name="eu-central-1")
        raw.meta.events.register("before-send.timestream-write", record_target)
        client = RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff(retries=1))

        timestream.create_database(client, "db", None, {"k": "v"})
        timestream.create_table(client, "db", "t", None, None, {})
        assert timestream.get_database(client, "db")["Tags"] == {"k": "v"}
        assert timestream.list_table_names(client, "db") == ["t"]

    operations = [target.split(".")[-1] for target in targets]
    assert operations[:2] == ["DescribeEndpoints", "CreateDatabase"]
    assert operations.count("DescribeEndpoints") == 1, "the discovered endpoint should be cached, not rediscovered"
