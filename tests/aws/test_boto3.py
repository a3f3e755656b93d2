"""boto3 against a real sluiced: every operation the HTTP API serves, and its errors, exactly as
an application written for AWS Kinesis would call them (the only change: endpoint_url)."""
import base64
import json
import time
import uuid

import botocore.eventstream
import httpx
import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(stream):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}"


def error_code(call, *args, **kwargs):
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]["Code"]


def create(client, name, shards=1, **extra):
    client.create_stream(StreamName=name, ShardCount=shards, **extra)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})


def read_all(client, name, shard_id, iterator_type="TRIM_HORIZON", **position):
    iterator = client.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType=iterator_type,
                                         **position)["ShardIterator"]
    records = []
    while True:
        page = client.get_records(ShardIterator=iterator)
        records += page["Records"]
        if not page["Records"]:
            return records, page
        iterator = page["NextShardIterator"]


# ------------------------------------------------------------------------------------------------
# Stream lifecycle.

def test_create_describe_list_delete(kinesis, stream_name):
    create(kinesis, stream_name, 3, Tags={"team": "data"})
    description = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert description["StreamStatus"] == "ACTIVE"
    assert description["StreamARN"] == arn(stream_name)
    assert description["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert description["RetentionPeriodHours"] == 24
    assert description["HasMoreShards"] is False
    assert description["EncryptionType"] == "NONE"
    assert description["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert abs(description["StreamCreationTimestamp"].timestamp() - time.time()) < 60
    shards = description["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(3)]
    assert shards[0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert shards[-1]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
    for low, high in zip(shards, shards[1:]):
        assert int(low["HashKeyRange"]["EndingHashKey"]) + 1 == int(high["HashKeyRange"]["StartingHashKey"])
    assert "EndingSequenceNumber" not in shards[0]["SequenceNumberRange"]

    page = kinesis.describe_stream(StreamName=stream_name, Limit=2)["StreamDescription"]
    assert page["HasMoreShards"] and len(page["Shards"]) == 2
    rest = kinesis.describe_stream(StreamName=stream_name, ExclusiveStartShardId=page["Shards"][-1]["ShardId"])
    assert [s["ShardId"] for s in rest["StreamDescription"]["Shards"]] == ["shardId-000000000002"]

    summary = kinesis.describe_stream_summary(StreamARN=arn(stream_name))["StreamDescriptionSummary"]
    assert (summary["OpenShardCount"], summary["ConsumerCount"], summary["StreamName"]) == (3, 0, stream_name)

    listed = kinesis.list_shards(StreamName=stream_name, MaxResults=2)
    assert len(listed["Shards"]) == 2
    more = kinesis.list_shards(NextToken=listed["NextToken"])
    assert [s["ShardId"] for s in more["Shards"]] == ["shardId-000000000002"] and "NextToken" not in more
    after = kinesis.list_shards(StreamARN=arn(stream_name),
                                ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000000"})
    assert len(after["Shards"]) == 2

    assert kinesis.list_tags_for_stream(StreamName=stream_name)["Tags"] == [{"Key": "team", "Value": "data"}]
    kinesis.delete_stream(StreamName=stream_name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=stream_name, WaiterConfig={"Delay": 0.1})
    assert error_code(kinesis.describe_stream, StreamName=stream_name) == "ResourceNotFoundException"
    assert error_code(kinesis.delete_stream, StreamName=stream_name) == "ResourceNotFoundException"


def test_list_streams_pages(kinesis, stream_name):
    names = [f"{stream_name}-{i}" for i in range(3)]
    for name in names:
        create(kinesis, name)
    seen, token = [], None
    while True:
        page = kinesis.list_streams(Limit=2, **({"NextToken": token} if token else {}))
        seen += page["StreamNames"]
        assert [s["StreamName"] for s in page["StreamSummaries"]] == page["StreamNames"]
        if not page["HasMoreStreams"]:
            break
        token = page["NextToken"]
    assert set(names) <= set(seen)
    assert seen == sorted(seen)
    start = kinesis.list_streams(ExclusiveStartStreamName=names[0])["StreamNames"]
    assert names[0] not in start and names[1] in start


def test_on_demand_streams_and_limits(kinesis, stream_name):
    kinesis.create_stream(StreamName=stream_name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert summary["OpenShardCount"] == 4
    limits = kinesis.describe_limits()
    assert limits["ShardLimit"] == 500
    assert limits["OnDemandStreamCount"] >= 1 and limits["OnDemandStreamCountLimit"] == 50
    assert limits["OpenShardCount"] >= 4


def test_create_stream_errors(kinesis, raw, stream_name):
    create(kinesis, stream_name)
    assert error_code(kinesis.create_stream, StreamName=stream_name, ShardCount=1) == "ResourceInUseException"
    assert error_code(raw.create_stream, StreamName="no spaces", ShardCount=1) == "ValidationException"
    assert error_code(raw.create_stream, StreamName="x" * 129, ShardCount=1) == "ValidationException"
    assert error_code(raw.create_stream, StreamName=stream_name + "x", ShardCount=0) == "ValidationException"
    assert error_code(raw.create_stream, ShardCount=1) == "ValidationException"
    assert error_code(kinesis.create_stream, StreamName=stream_name + "x") == "InvalidArgumentException"
    assert error_code(kinesis.create_stream, StreamName=stream_name + "x", ShardCount=501) == "LimitExceededException"
    assert error_code(raw.create_stream, StreamName=stream_name + "x", ShardCount="two") == "SerializationException"
    assert error_code(raw.create_stream, StreamName=stream_name + "x", ShardCount=1,
                      StreamModeDetails={"StreamMode": "SOMETIMES"}) == "ValidationException"


# ------------------------------------------------------------------------------------------------
# Data plane.

def test_every_byte_value_round_trips(fast, stream_name):
    create(fast, stream_name, 2)
    every_byte = bytes(range(256))
    payloads = [every_byte, b"", every_byte[::-1] * 4, b"\x00", b"\xff" * 1000]
    puts = [fast.put_record(StreamName=stream_name, Data=data, PartitionKey="key") for data in payloads]
    assert len({put["ShardId"] for put in puts}) == 1
    assert all(put["EncryptionType"] == "NONE" for put in puts)
    records, page = read_all(fast, stream_name, puts[0]["ShardId"])
    assert [r["Data"] for r in records] == payloads
    assert [r["SequenceNumber"] for r in records] == [put["SequenceNumber"] for put in puts]
    assert all(r["PartitionKey"] == "key" for r in records)
    assert page["MillisBehindLatest"] == 0
    # Unicode partition keys, including ones outside the BMP.
    put = fast.put_record(StreamName=stream_name, Data=b"u", PartitionKey="ключ-🔑")
    records, _ = read_all(fast, stream_name, put["ShardId"], "AT_SEQUENCE_NUMBER",
                          StartingSequenceNumber=put["SequenceNumber"])
    assert records[0]["PartitionKey"] == "ключ-🔑"


def test_all_five_iterator_types(fast, stream_name):
    create(fast, stream_name)
    shard = "shardId-000000000000"
    first = fast.put_record(StreamName=stream_name, Data=b"first", PartitionKey="k")
    time.sleep(0.05)
    second = fast.put_record(StreamName=stream_name, Data=b"second", PartitionKey="k")
    third = fast.put_record(StreamName=stream_name, Data=b"third", PartitionKey="k")
    assert int(first["SequenceNumber"]) < int(second["SequenceNumber"]) < int(third["SequenceNumber"])

    trim, _ = read_all(fast, stream_name, shard, "TRIM_HORIZON")
    assert [r["Data"] for r in trim] == [b"first", b"second", b"third"]
    at, _ = read_all(fast, stream_name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=second["SequenceNumber"])
    assert [r["Data"] for r in at] == [b"second", b"third"]
    after, _ = read_all(fast, stream_name, shard, "AFTER_SEQUENCE_NUMBER",
                        StartingSequenceNumber=second["SequenceNumber"])
    assert [r["Data"] for r in after] == [b"third"]
    at_time, _ = read_all(fast, stream_name, shard, "AT_TIMESTAMP", Timestamp=trim[1]["ApproximateArrivalTimestamp"])
    assert [r["Data"] for r in at_time][-1] == b"third" and b"first" not in [r["Data"] for r in at_time]
    # A timestamp before the stream clamps to the trim horizon.
    early, _ = read_all(fast, stream_name, shard, "AT_TIMESTAMP", Timestamp=0)
    assert len(early) == 3

    latest = fast.get_shard_iterator(StreamName=stream_name, ShardId=shard, ShardIteratorType="LATEST")
    empty = fast.get_records(ShardIterator=latest["ShardIterator"])
    assert empty["Records"] == [] and empty["MillisBehindLatest"] == 0
    fourth = fast.put_record(StreamName=stream_name, Data=b"fourth", PartitionKey="k")
    page = fast.get_records(ShardIterator=empty["NextShardIterator"], Limit=5)
    assert [r["SequenceNumber"] for r in page["Records"]] == [fourth["SequenceNumber"]]

    one = fast.get_records(ShardIterator=fast.get_shard_iterator(
        StreamARN=arn(stream_name), ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"], Limit=1)
    assert len(one["Records"]) == 1


def test_put_records_answers_in_order(fast, stream_name):
    create(fast, stream_name, 4)
    entries = [{"Data": f"record-{i}".encode(), "PartitionKey": f"key-{i % 37}"} for i in range(500)]
    response = fast.put_records(StreamName=stream_name, Records=entries)
    assert response["FailedRecordCount"] == 0 and len(response["Records"]) == 500
    assert response["EncryptionType"] == "NONE"
    stored = {}
    for shard in range(4):
        records, _ = read_all(fast, stream_name, f"shardId-{shard:012d}")
        stored.update({r["SequenceNumber"]: (f"shardId-{shard:012d}", r["Data"]) for r in records})
    for i, result in enumerate(response["Records"]):
        assert stored[result["SequenceNumber"]] == (result["ShardId"], f"record-{i}".encode())
    # ExplicitHashKey picks the shard; the top of the range is the last shard.
    top = fast.put_records(StreamARN=arn(stream_name),
                           Records=[{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": str(2**128 - 1)}])
    assert top["Records"][0]["ShardId"] == "shardId-000000000003"


def test_a_put_records_of_ten_mebibytes_fits_the_body_limit(fast, stream_name):
    """Kinesis' largest PutRecords, 10 MiB of data and keys, is ~13.4 MiB of base64 JSON: it
    must pass the HTTP body limit (14 MiB) and be stored whole."""
    create(fast, stream_name, 2)
    record = (1 << 20) - len("key-0000000000")
    entries = [{"Data": bytes([i]) * record, "PartitionKey": f"key-{i:010d}"} for i in range(10)]
    assert sum(len(e["Data"]) + len(e["PartitionKey"]) for e in entries) == 10 << 20
    response = fast.put_records(StreamName=stream_name, Records=entries)
    assert response["FailedRecordCount"] == 0
    stored = {}
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        records, _ = read_all(fast, stream_name, shard)
        stored.update({r["SequenceNumber"]: r["Data"] for r in records})
    assert [stored[r["SequenceNumber"]] for r in response["Records"]] == [e["Data"] for e in entries]
    # One byte more is over Kinesis' request limit: the service refuses it, not the HTTP layer.
    entries.append({"Data": b"x", "PartitionKey": "k"})
    assert error_code(fast.put_records, StreamName=stream_name, Records=entries) == "InvalidArgumentException"


def test_put_records_partial_failure_under_kinesis_limits(kinesis, stream_name):
    create(kinesis, stream_name, 2)
    hot = [{"Data": str(i).encode(), "PartitionKey": "hot"} for i in range(500)]
    started = time.monotonic()
    accepted = throttled = 0
    for _ in range(3):
        response = kinesis.put_records(StreamName=stream_name, Records=hot)
        failed = [r for r in response["Records"] if "ErrorCode" in r]
        assert response["FailedRecordCount"] == len(failed)
        for result in failed:
            assert result["ErrorCode"] == "ProvisionedThroughputExceededException"
            assert result["ErrorMessage"] and "SequenceNumber" not in result and "ShardId" not in result
        throttled += len(failed)
        accepted += 500 - len(failed)
    refill = int((time.monotonic() - started) * 1000) + 1
    assert accepted <= 1000 + refill, accepted
    assert throttled >= 500 - refill, throttled
    # The other shard is unaffected.
    other = kinesis.put_records(StreamName=stream_name,
                                Records=[{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "0"}])
    assert other["FailedRecordCount"] == 0


def test_data_plane_errors(kinesis, raw, stream_name):
    create(kinesis, stream_name, 2)
    put = kinesis.put_record(StreamName=stream_name, Data=b"x", PartitionKey="k")
    assert error_code(raw.put_record, StreamName=stream_name, Data=b"x", PartitionKey="") == "ValidationException"
    assert error_code(raw.put_record, StreamName=stream_name, Data=b"x", PartitionKey="k" * 257) \
        == "ValidationException"
    assert error_code(kinesis.put_record, StreamName=stream_name, Data=b"x" * (1 << 20), PartitionKey="k") \
        == "ValidationException"
    assert error_code(raw.put_record, StreamName=stream_name, Data=b"x", PartitionKey="k",
                      ExplicitHashKey=str(2**128)) == "InvalidArgumentException"
    assert error_code(kinesis.put_record, StreamName="missing", Data=b"x", PartitionKey="k") \
        == "ResourceNotFoundException"
    assert error_code(raw.put_records, StreamName=stream_name, Records=[]) == "ValidationException"
    assert error_code(raw.put_records, StreamName=stream_name,
                      Records=[{"Data": b"x", "PartitionKey": "k"}] * 501) == "ValidationException"
    assert error_code(kinesis.get_shard_iterator, StreamName=stream_name, ShardId="shardId-000000000009",
                      ShardIteratorType="LATEST") == "ResourceNotFoundException"
    assert error_code(kinesis.get_shard_iterator, StreamName=stream_name, ShardId=put["ShardId"],
                      ShardIteratorType="AT_SEQUENCE_NUMBER") == "InvalidArgumentException"
    assert error_code(raw.get_shard_iterator, StreamName=stream_name, ShardId=put["ShardId"],
                      ShardIteratorType="OLDEST") == "ValidationException"
    assert error_code(kinesis.get_records, ShardIterator="not-an-iterator") == "InvalidArgumentException"
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=put["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert error_code(raw.get_records, ShardIterator=iterator, Limit=0) == "ValidationException"
    assert error_code(raw.get_records, ShardIterator=iterator, Limit=10001) == "ValidationException"


def test_get_records_throttles_at_five_calls_per_second(kinesis, stream_name):
    create(kinesis, stream_name)
    kinesis.put_record(StreamName=stream_name, Data=b"x", PartitionKey="k")
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    started, throttled = time.monotonic(), 0
    for _ in range(10):
        try:
            kinesis.get_records(ShardIterator=iterator)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            throttled += 1
    assert throttled >= 5 - int((time.monotonic() - started) / 0.2), throttled


def test_retention(kinesis, stream_name):
    create(kinesis, stream_name)
    kinesis.increase_stream_retention_period(StreamName=stream_name, RetentionPeriodHours=48)
    assert error_code(kinesis.increase_stream_retention_period, StreamName=stream_name,
                      RetentionPeriodHours=30) == "InvalidArgumentException"
    assert error_code(kinesis.increase_stream_retention_period, StreamName=stream_name,
                      RetentionPeriodHours=8761) == "InvalidArgumentException"
    assert error_code(kinesis.decrease_stream_retention_period, StreamName=stream_name,
                      RetentionPeriodHours=72) == "InvalidArgumentException"
    kinesis.decrease_stream_retention_period(StreamARN=arn(stream_name), RetentionPeriodHours=24)
    kinesis.increase_stream_retention_period(StreamName=stream_name, RetentionPeriodHours=8760)
    summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 8760


# ------------------------------------------------------------------------------------------------
# Tags, monitoring, capacity mode, account.

def test_stream_tags(kinesis, raw, stream_name):
    create(kinesis, stream_name)
    kinesis.add_tags_to_stream(StreamName=stream_name, Tags={f"k{i}": f"v{i}" for i in range(5)})
    page = kinesis.list_tags_for_stream(StreamName=stream_name, Limit=2)
    assert page["Tags"] == [{"Key": "k0", "Value": "v0"}, {"Key": "k1", "Value": "v1"}] and page["HasMoreTags"]
    rest = kinesis.list_tags_for_stream(StreamName=stream_name, ExclusiveStartTagKey="k1")
    assert len(rest["Tags"]) == 3 and not rest["HasMoreTags"]
    kinesis.remove_tags_from_stream(StreamName=stream_name, TagKeys=["k0"])
    assert len(kinesis.list_tags_for_stream(StreamName=stream_name)["Tags"]) == 4
    assert error_code(kinesis.add_tags_to_stream, StreamName=stream_name,
                      Tags={f"x{i}": "" for i in range(50)}) == "LimitExceededException"
    assert error_code(raw.add_tags_to_stream, StreamName=stream_name, Tags={"": "v"}) == "ValidationException"


def test_tag_resource_on_streams_and_consumers(kinesis, stream_name):
    create(kinesis, stream_name)
    kinesis.tag_resource(ResourceARN=arn(stream_name), Tags={"env": "test", "owner": "me"})
    assert kinesis.list_tags_for_resource(ResourceARN=arn(stream_name))["Tags"] == [
        {"Key": "env", "Value": "test"}, {"Key": "owner", "Value": "me"}]
    kinesis.untag_resource(ResourceARN=arn(stream_name), TagKeys=["owner"])
    assert kinesis.list_tags_for_stream(StreamName=stream_name)["Tags"] == [{"Key": "env", "Value": "test"}]

    consumer = kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="tagged",
                                                Tags={"app": "reader"})["Consumer"]
    consumer_arn = consumer["ConsumerARN"]
    assert kinesis.list_tags_for_resource(ResourceARN=consumer_arn)["Tags"] == [{"Key": "app", "Value": "reader"}]
    kinesis.tag_resource(ResourceARN=consumer_arn, Tags={"tier": "gold"})
    kinesis.untag_resource(ResourceARN=consumer_arn, TagKeys=["app"])
    assert kinesis.list_tags_for_resource(ResourceARN=consumer_arn)["Tags"] == [{"Key": "tier", "Value": "gold"}]
    # Stream and consumer tags are separate.
    assert kinesis.list_tags_for_resource(ResourceARN=arn(stream_name))["Tags"] == [{"Key": "env", "Value": "test"}]

    assert error_code(kinesis.list_tags_for_resource, ResourceARN=arn("missing")) == "ResourceNotFoundException"
    assert error_code(kinesis.tag_resource, ResourceARN=consumer_arn.rsplit(":", 1)[0] + ":1",
                      Tags={"a": "b"}) == "ResourceNotFoundException"


def test_enhanced_monitoring_is_recorded(kinesis, stream_name):
    create(kinesis, stream_name)
    enabled = kinesis.enable_enhanced_monitoring(StreamName=stream_name,
                                                 ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"])
    assert enabled["CurrentShardLevelMetrics"] == []
    assert enabled["DesiredShardLevelMetrics"] == ["IncomingBytes", "OutgoingRecords"]
    assert enabled["StreamARN"] == arn(stream_name)
    everything = kinesis.enable_enhanced_monitoring(StreamARN=arn(stream_name), ShardLevelMetrics=["ALL"])
    assert len(everything["DesiredShardLevelMetrics"]) == 7
    disabled = kinesis.disable_enhanced_monitoring(StreamName=stream_name, ShardLevelMetrics=["IncomingBytes"])
    assert "IncomingBytes" not in disabled["DesiredShardLevelMetrics"]
    assert len(disabled["DesiredShardLevelMetrics"]) == 6
    described = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]["EnhancedMonitoring"]
    assert described == [{"ShardLevelMetrics": disabled["DesiredShardLevelMetrics"]}]
    kinesis.disable_enhanced_monitoring(StreamName=stream_name, ShardLevelMetrics=["ALL"])
    summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert summary["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert error_code(kinesis.enable_enhanced_monitoring, StreamName="missing",
                      ShardLevelMetrics=["ALL"]) == "ResourceNotFoundException"


def test_update_stream_mode_twice_a_day(kinesis, stream_name):
    create(kinesis, stream_name)
    mode = lambda: kinesis.describe_stream_summary(StreamName=stream_name)[  # noqa: E731
        "StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"]
    assert error_code(kinesis.update_stream_mode, StreamARN=arn(stream_name),
                      StreamModeDetails={"StreamMode": "PROVISIONED"}) == "InvalidArgumentException"
    kinesis.update_stream_mode(StreamARN=arn(stream_name), StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert mode() == "ON_DEMAND"
    kinesis.update_stream_mode(StreamARN=arn(stream_name), StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert mode() == "PROVISIONED"
    assert error_code(kinesis.update_stream_mode, StreamARN=arn(stream_name),
                      StreamModeDetails={"StreamMode": "ON_DEMAND"}) == "LimitExceededException"
    assert mode() == "PROVISIONED"
    assert error_code(kinesis.update_stream_mode, StreamARN=arn("missing"),
                      StreamModeDetails={"StreamMode": "ON_DEMAND"}) == "ResourceNotFoundException"


def test_describe_account_settings(kinesis):
    settings = kinesis.describe_account_settings()
    assert settings["MinimumThroughputBillingCommitment"]["Status"] == "DISABLED"


@pytest.mark.parametrize("target", ["Kinesis_20131202.FrobnicateStream", "Kinesis_20131202.", "Kinesis_20131202"])
def test_an_operation_the_model_does_not_have_is_unknown(unlimited_daemon, target):
    # Every operation of the pinned model is served (tests/aws/test_model_coverage.py); one it
    # does not name is answered as AWS answers it.
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    response = httpx.post(unlimited_daemon.endpoint + "/", content=b"{}", headers=headers, timeout=30)
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


# ------------------------------------------------------------------------------------------------
# Resharding.

def wait_active(client, name):
    for _ in range(200):
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return summary
        time.sleep(0.05)
    raise AssertionError(f"{name} did not become ACTIVE")


def test_split_and_merge_keep_lineage(kinesis, stream_name):
    create(kinesis, stream_name)
    parent = "shardId-000000000000"
    before = kinesis.put_record(StreamName=stream_name, Data=b"before", PartitionKey="k")
    middle = str(2**127)
    kinesis.split_shard(StreamName=stream_name, ShardToSplit=parent, NewStartingHashKey=middle)
    wait_active(kinesis, stream_name)
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream_name)["Shards"]}
    assert len(shards) == 3
    assert "EndingSequenceNumber" in shards[parent]["SequenceNumberRange"]
    children = [s for s in shards.values() if s.get("ParentShardId") == parent]
    assert sorted(c["HashKeyRange"]["StartingHashKey"] for c in children) == ["0", middle]

    # Reading the closed parent to its end yields its records, then ChildShards and no iterator.
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=parent,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator)
        records += page["Records"]
        iterator = page.get("NextShardIterator")
        if iterator is None:
            assert {c["ShardId"] for c in page["ChildShards"]} == {c["ShardId"] for c in children}
            assert all(c["ParentShards"] == [parent] for c in page["ChildShards"])
    assert [r["SequenceNumber"] for r in records] == [before["SequenceNumber"]]
    after = kinesis.put_record(StreamName=stream_name, Data=b"after", PartitionKey="k")
    assert after["ShardId"] in {c["ShardId"] for c in children}

    low, high = sorted(children, key=lambda c: int(c["HashKeyRange"]["StartingHashKey"]))
    kinesis.merge_shards(StreamName=stream_name, ShardToMerge=low["ShardId"],
                         AdjacentShardToMerge=high["ShardId"])
    wait_active(kinesis, stream_name)
    merged = [s for s in kinesis.list_shards(StreamName=stream_name)["Shards"]
              if s.get("AdjacentParentShardId")]
    assert len(merged) == 1 and {merged[0]["ParentShardId"], merged[0]["AdjacentParentShardId"]} == \
        {low["ShardId"], high["ShardId"]}
    assert merged[0]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)}

    assert error_code(kinesis.split_shard, StreamName=stream_name, ShardToSplit="shardId-000000000099",
                      NewStartingHashKey="5") == "ResourceNotFoundException"
    assert error_code(kinesis.split_shard, StreamName=stream_name, ShardToSplit=parent,
                      NewStartingHashKey="5") == "ResourceInUseException"


def test_update_shard_count(kinesis, raw, stream_name):
    create(kinesis, stream_name, 2)
    scaled = kinesis.update_shard_count(StreamName=stream_name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert (scaled["CurrentShardCount"], scaled["TargetShardCount"], scaled["StreamName"]) == (2, 4, stream_name)
    for _ in range(200):
        summary = wait_active(kinesis, stream_name)
        if summary["OpenShardCount"] == 4:
            break
        time.sleep(0.05)
    assert summary["OpenShardCount"] == 4
    assert error_code(raw.update_shard_count, StreamName=stream_name, TargetShardCount=8,
                      ScalingType="SIDEWAYS") == "ValidationException"
    assert error_code(raw.update_shard_count, StreamName=stream_name, TargetShardCount=0,
                      ScalingType="UNIFORM_SCALING") == "ValidationException"


# ------------------------------------------------------------------------------------------------
# Enhanced fan-out.

def test_consumers(kinesis, raw, stream_name):
    create(kinesis, stream_name)
    consumer = kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="app")["Consumer"]
    assert consumer["ConsumerStatus"] == "ACTIVE"
    assert consumer["ConsumerARN"].startswith(arn(stream_name) + "/consumer/app:")
    assert error_code(kinesis.register_stream_consumer, StreamARN=arn(stream_name),
                      ConsumerName="app") == "ResourceInUseException"
    assert error_code(raw.register_stream_consumer, StreamARN=arn(stream_name),
                      ConsumerName="bad name") == "ValidationException"
    assert error_code(raw.register_stream_consumer, StreamARN="not-an-arn",
                      ConsumerName="x") == "ValidationException"
    by_arn = kinesis.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]
    by_name = kinesis.describe_stream_consumer(StreamARN=arn(stream_name), ConsumerName="app")["ConsumerDescription"]
    assert by_arn == by_name and by_arn["StreamARN"] == arn(stream_name)
    kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="other")
    page = kinesis.list_stream_consumers(StreamARN=arn(stream_name), MaxResults=1)
    assert len(page["Consumers"]) == 1
    rest = kinesis.list_stream_consumers(StreamARN=arn(stream_name), NextToken=page["NextToken"])
    assert {c["ConsumerName"] for c in page["Consumers"] + rest["Consumers"]} == {"app", "other"}
    assert error_code(kinesis.delete_stream, StreamName=stream_name) == "ResourceInUseException"
    kinesis.deregister_stream_consumer(ConsumerARN=consumer["ConsumerARN"])
    assert error_code(kinesis.describe_stream_consumer,
                      ConsumerARN=consumer["ConsumerARN"]) == "ResourceNotFoundException"
    kinesis.delete_stream(StreamName=stream_name, EnforceConsumerDeletion=True)


def test_subscribe_to_shard_pushes_records(kinesis, stream_name):
    create(kinesis, stream_name)
    shard = "shardId-000000000000"
    before = kinesis.put_record(StreamName=stream_name, Data=bytes(range(256)), PartitionKey="k")
    consumer = kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="efo")["Consumer"]
    subscription = kinesis.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId=shard,
                                              StartingPosition={"Type": "TRIM_HORIZON"})
    events = iter(subscription["EventStream"])
    first = next(events)["SubscribeToShardEvent"]
    assert first["Records"][0]["Data"] == bytes(range(256))
    assert first["ContinuationSequenceNumber"] == before["SequenceNumber"]
    assert first["MillisBehindLatest"] == 0
    # A record put now arrives without polling.
    after = kinesis.put_record(StreamName=stream_name, Data=b"pushed", PartitionKey="k")
    pushed = []
    while not pushed:
        pushed = next(events)["SubscribeToShardEvent"]["Records"]
    assert pushed[0]["SequenceNumber"] == after["SequenceNumber"] and pushed[0]["Data"] == b"pushed"
    # A second subscription within 5 s is refused, before any event.
    assert error_code(kinesis.subscribe_to_shard, ConsumerARN=consumer["ConsumerARN"], ShardId=shard,
                      StartingPosition={"Type": "LATEST"}) == "ResourceInUseException"
    assert error_code(kinesis.subscribe_to_shard, ConsumerARN=arn(stream_name) + "/consumer/nobody:1",
                      ShardId=shard, StartingPosition={"Type": "LATEST"}) == "ResourceNotFoundException"
    subscription["EventStream"].close()


def test_subscribe_from_a_sequence_number_and_a_timestamp(kinesis, stream_name):
    create(kinesis, stream_name)
    shard = "shardId-000000000000"
    puts = [kinesis.put_record(StreamName=stream_name, Data=f"{i}".encode(), PartitionKey="k") for i in range(3)]
    consumer = kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="c")["Consumer"]
    stream = kinesis.subscribe_to_shard(
        ConsumerARN=consumer["ConsumerARN"], ShardId=shard,
        StartingPosition={"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": puts[0]["SequenceNumber"]})
    event = next(iter(stream["EventStream"]))["SubscribeToShardEvent"]
    assert [r["Data"] for r in event["Records"]] == [b"1", b"2"]
    stream["EventStream"].close()
    other = kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="d")["Consumer"]
    stream = kinesis.subscribe_to_shard(ConsumerARN=other["ConsumerARN"], ShardId=shard,
                                        StartingPosition={"Type": "AT_TIMESTAMP", "Timestamp": 0})
    event = next(iter(stream["EventStream"]))["SubscribeToShardEvent"]
    assert [r["Data"] for r in event["Records"]] == [b"0", b"1", b"2"]
    stream["EventStream"].close()


def test_subscribe_to_shard_over_http2_prior_knowledge(kinesis_daemon, kinesis, stream_name):
    """The Java SDK v2 (and so KCL 2/3) subscribes over cleartext HTTP/2 with prior knowledge."""
    create(kinesis, stream_name)
    put = kinesis.put_record(StreamName=stream_name, Data=b"over h2", PartitionKey="k")
    consumer = kinesis.register_stream_consumer(StreamARN=arn(stream_name), ConsumerName="h2")["Consumer"]
    body = json.dumps({"ConsumerARN": consumer["ConsumerARN"], "ShardId": put["ShardId"],
                       "StartingPosition": {"Type": "TRIM_HORIZON"}})
    headers = {"X-Amz-Target": "Kinesis_20131202.SubscribeToShard",
               "Content-Type": "application/x-amz-json-1.1"}
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        with client.stream("POST", kinesis_daemon.endpoint + "/", content=body, headers=headers) as response:
            assert response.http_version == "HTTP/2"
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
            assert response.headers["x-amzn-requestid"]
            buffer, messages = botocore.eventstream.EventStreamBuffer(), []
            for chunk in response.iter_bytes():
                buffer.add_data(chunk)
                messages += list(buffer)
                if len(messages) >= 2:
                    break
    assert messages[0].headers[":event-type"] == "initial-response"
    assert messages[1].headers[":message-type"] == "event"
    assert messages[1].headers[":event-type"] == "SubscribeToShardEvent"
    event = json.loads(messages[1].payload)
    assert base64.b64decode(event["Records"][0]["Data"]) == b"over h2"
    assert event["ContinuationSequenceNumber"] == put["SequenceNumber"]
    # Ordinary calls work over HTTP/2 too.
    with httpx.Client(http1=False, http2=True) as client:
        response = client.post(kinesis_daemon.endpoint + "/", content="{}",
                               headers={**headers, "X-Amz-Target": "Kinesis_20131202.DescribeLimits"})
        assert response.http_version == "HTTP/2" and response.json()["ShardLimit"] == 500


# ------------------------------------------------------------------------------------------------
# The protocol itself, below boto3.

def post(daemon, target, body, content_type="application/x-amz-json-1.1", **headers):
    headers = {"Content-Type": content_type, **({"X-Amz-Target": target} if target else {}), **headers}
    return httpx.post(daemon.endpoint + "/", content=body, headers=headers, timeout=30)


def test_protocol_errors(kinesis_daemon):
    cases = [
        ("Kinesis_20131202.CreateStream", b"{not json", "SerializationException"),
        ("Kinesis_20131202.CreateStream", b"[1, 2]", "SerializationException"),
        ("Kinesis_20131202.CreateStream", b'{"StreamName": 7, "ShardCount": 1}', "SerializationException"),
        ("Kinesis_20131202.PutRecord", b'{"StreamName": "s", "Data": "!!!", "PartitionKey": "k"}',
         "SerializationException"),
        ("Kinesis_20131202.CreateStream", b'{"ShardCount": 1}', "ValidationException"),
        ("Kinesis_20131202.NoSuchThing", b"{}", "UnknownOperationException"),
        ("DynamoDB_20120810.ListTables", b"{}", "UnknownOperationException"),
        (None, b"{}", "UnknownOperationException"),
    ]
    for target, body, expected in cases:
        response = post(kinesis_daemon, target, body)
        assert response.status_code == 400, (target, body, response.text)
        assert response.json()["__type"] == expected, (target, body, response.text)
        assert response.json()["message"]
        assert response.headers["content-type"] == "application/x-amz-json-1.1"
        assert len(response.headers["x-amzn-requestid"]) == 36
    get = httpx.get(kinesis_daemon.endpoint + "/")
    assert get.status_code == 400 and get.json()["__type"] == "UnknownOperationException"
    # SigV4 headers are accepted (not verified yet), and unsigned requests too.
    signed = post(kinesis_daemon, "Kinesis_20131202.ListStreams", b"{}",
                  Authorization="AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/kinesis/aws4_request, "
                                "SignedHeaders=host, Signature=00")
    assert signed.status_code == 200 and "StreamNames" in signed.json()
    assert post(kinesis_daemon, "Kinesis_20131202.ListStreams", b"").status_code == 200
    # Bodies beyond the limit are refused before they are read.
    huge = post(kinesis_daemon, "Kinesis_20131202.PutRecords", b"x" * (15 << 20))
    assert huge.status_code == 413 and huge.json()["__type"] == "SerializationException"


def test_region_and_account_id_are_configurable():
    from conftest import Daemon
    daemon = Daemon("kinesis", "--region", "eu-west-1", "--account-id", "123456789012")
    try:
        client = daemon.client()
        client.create_stream(StreamName="elsewhere", ShardCount=1)
        stream_arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/elsewhere"
        assert client.describe_stream_summary(StreamName="elsewhere")["StreamDescriptionSummary"]["StreamARN"] \
            == stream_arn
        consumer = client.register_stream_consumer(StreamARN=stream_arn, ConsumerName="c")["Consumer"]
        assert consumer["ConsumerARN"].startswith(stream_arn + "/consumer/c:")
        # ARNs of another region or account name no stream here.
        assert error_code(client.describe_stream_summary, StreamARN=arn("elsewhere")) == "InvalidArgumentException"
        with pytest.raises(ClientError) as raised:
            client.describe_stream(StreamName="missing")
        assert "123456789012" in raised.value.response["Error"]["Message"]
    finally:
        daemon.stop()


def test_request_ids_are_unique(kinesis):
    ids = {kinesis.list_streams()["ResponseMetadata"]["RequestId"] for _ in range(20)}
    assert len(ids) == 20 and all(uuid.UUID(i) for i in ids)
