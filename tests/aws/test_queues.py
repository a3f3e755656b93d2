"""Kinesis queues against a real sluiced with boto3's own queue operations (botocore 1.44.5's
model), written from the AWS documentation: lifecycle, receive / acknowledge, visibility
timeouts and redelivery, dead-lettering and restore, per-entry answers, and errors.

Short visibility timeouts (0 and 1 s, which the model allows) keep it fast; the few waits are
long polls that end as soon as a record becomes visible again."""
import time
import uuid

import pytest


def on_demand_stream(kinesis, name):
    kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_active(kinesis, queue_arn):
    """CreateQueue is asynchronous: "Use DescribeQueue to check the status of the queue"."""
    deadline = time.monotonic() + 10
    while True:
        described = kinesis.describe_queue(QueueARN=queue_arn)["QueueDescription"]
        if described["QueueStatus"] == "ACTIVE":
            return described
        assert described["QueueStatus"] == "CREATING", described
        assert time.monotonic() < deadline, described
        time.sleep(0.05)


def new_queue(kinesis, stream_arn, attributes=None, position="TRIM_HORIZON"):
    arguments = {
        "QueueName": unique("q"),
        "StreamConfigurationList": [{"StreamARN": stream_arn, "StartingPosition": {"Type": position}}],
    }
    if attributes:
        arguments["QueueAttributes"] = attributes
    arn = kinesis.create_queue(**arguments)["QueueDescription"]["QueueARN"]
    wait_active(kinesis, arn)
    return arn


def put(kinesis, stream_arn, count, prefix="r"):
    sent = {}
    for start in range(0, count, 500):
        entries = [{"Data": f"{prefix}{i}".encode(), "PartitionKey": f"key-{i}"} for i in range(start, min(count, start + 500))]
        answer = kinesis.put_records(StreamARN=stream_arn, Records=entries)
        assert answer["FailedRecordCount"] == 0
        for entry, result in zip(entries, answer["Records"]):
            sent[result["SequenceNumber"]] = entry["Data"]
    return sent


def receive_all(kinesis, queue_arn, count, **arguments):
    """Receives until `count` records arrived (each receive returns at most 10)."""
    records = []
    deadline = time.monotonic() + 30
    while len(records) < count:
        assert time.monotonic() < deadline, f"received {len(records)} of {count}"
        answer = kinesis.receive_queue_records(QueueARN=queue_arn, Limit=10, WaitTimeSeconds=1, **arguments)
        assert len(answer["QueueRecords"]) <= 10
        records.extend(answer["QueueRecords"])
    return records


def acknowledge(kinesis, queue_arn, records):
    for start in range(0, len(records), 10):
        entries = [{"ReceiptHandle": r["ReceiptHandle"]} for r in records[start:start + 10]]
        answer = kinesis.acknowledge_queue_records(QueueARN=queue_arn, Entries=entries)
        assert answer["Failed"] == [], answer["Failed"]
        assert [e["ReceiptHandle"] for e in answer["Successful"]] == [e["ReceiptHandle"] for e in entries]


def error_code(raised):
    return raised.value.response["Error"]["Code"]


def test_queue_lifecycle(unlimited_daemon):
    kinesis = unlimited_daemon.client()
    stream = unique("queued")
    stream_arn = on_demand_stream(kinesis, stream)
    name = unique("orders")
    created = kinesis.create_queue(
        QueueName=name,
        StreamConfigurationList=[{"StreamARN": stream_arn, "StartingPosition": {"Type": "LATEST"}}],
        QueueAttributes={"VisibilityTimeoutSeconds": 45,
                         "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 3}},
    )["QueueDescription"]
    arn = created["QueueARN"]
    assert created["QueueName"] == name
    # Asynchronous, as the model documents: CREATING at once, then ACTIVE.
    assert created["QueueStatus"] == "CREATING"
    assert arn.startswith("arn:aws:kinesis:us-east-1:000000000000:queue/") and name not in arn
    described = wait_active(kinesis, arn)
    assert described["QueueAttributes"] == {"VisibilityTimeoutSeconds": 45,
                                            "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 3}}
    assert described["StreamConfigurationList"][0]["StreamARN"] == stream_arn
    assert described["StreamConfigurationList"][0]["StartingPosition"]["Type"] == "LATEST"

    listed = kinesis.list_queues(StreamFilter=[{"StreamARN": stream_arn}])["QueueSummaries"]
    assert [(q["QueueName"], q["QueueARN"]) for q in listed] == [(name, arn)]
    assert listed[0]["Streams"][0]["StreamARN"] == stream_arn
    # Defaults: 30 s and BUILT_IN with 6.
    other = new_queue(kinesis, stream_arn)
    attributes = kinesis.describe_queue(QueueARN=other)["QueueDescription"]["QueueAttributes"]
    assert attributes == {"VisibilityTimeoutSeconds": 30,
                          "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 6}}
    first = kinesis.list_queues(StreamFilter=[{"StreamARN": stream_arn}], MaxResults=1)
    assert len(first["QueueSummaries"]) == 1 and "NextToken" in first
    rest = kinesis.list_queues(StreamFilter=[{"StreamARN": stream_arn}], NextToken=first["NextToken"])
    assert len(rest["QueueSummaries"]) == 1 and "NextToken" not in rest

    updated = kinesis.update_queue(QueueARN=arn, QueueAttributes={
        "VisibilityTimeoutSeconds": 5, "DeadLetterConfiguration": {"TargetType": "NONE"}})["QueueDescription"]
    assert updated["QueueStatus"] == "UPDATING"
    assert kinesis.describe_queue(QueueARN=arn)["QueueDescription"]["QueueStatus"] == "ACTIVE"
    assert updated["QueueAttributes"]["VisibilityTimeoutSeconds"] == 5
    assert updated["QueueAttributes"]["DeadLetterConfiguration"]["TargetType"] == "NONE"

    with pytest.raises(kinesis.exceptions.ResourceInUseException):
        kinesis.create_queue(QueueName=name, StreamConfigurationList=[{"StreamARN": stream_arn}])
    # A stream with queues cannot be deleted, nor switched to PROVISIONED.
    with pytest.raises(kinesis.exceptions.ResourceInUseException):
        kinesis.delete_stream(StreamARN=stream_arn, EnforceConsumerDeletion=True)
    with pytest.raises(kinesis.exceptions.ResourceInUseException):
        kinesis.update_stream_mode(StreamARN=stream_arn, StreamModeDetails={"StreamMode": "PROVISIONED"})

    kinesis.delete_queue(QueueARN=arn)
    kinesis.delete_queue(QueueARN=other)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.describe_queue(QueueARN=arn)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.receive_queue_records(QueueARN=arn, WaitTimeSeconds=1)
    assert kinesis.list_queues(StreamFilter=[{"StreamARN": stream_arn}])["QueueSummaries"] == []
    kinesis.delete_stream(StreamARN=stream_arn)


def test_queue_tags(unlimited_daemon):
    kinesis = unlimited_daemon.client()
    stream_arn = on_demand_stream(kinesis, unique("queued"))
    arn = kinesis.create_queue(QueueName=unique("tagged"), StreamConfigurationList=[{"StreamARN": stream_arn}],
                               Tags={"team": "orders", "tier": "1"})["QueueDescription"]["QueueARN"]
    wait_active(kinesis, arn)
    tags = lambda: {t["Key"]: t.get("Value") for t in kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]}
    assert tags() == {"team": "orders", "tier": "1"}
    kinesis.tag_resource(ResourceARN=arn, Tags={"tier": "2", "owner": "ops"})
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["team", "absent"])
    assert tags() == {"tier": "2", "owner": "ops"}
    # Fifty per resource, as for streams and consumers; a refused call changes nothing.
    with pytest.raises(kinesis.exceptions.LimitExceededException):
        kinesis.tag_resource(ResourceARN=arn, Tags={f"k{i}": "" for i in range(49)})
    assert tags() == {"tier": "2", "owner": "ops"}
    with pytest.raises(kinesis.exceptions.LimitExceededException):
        kinesis.create_queue(QueueName=unique("q"), StreamConfigurationList=[{"StreamARN": stream_arn}],
                             Tags={f"k{i}": "" for i in range(51)})
    # The stream's tags are its own.
    assert kinesis.list_tags_for_resource(ResourceARN=stream_arn)["Tags"] == []
    # Tags go with the queue (server/tests/queues.rs checks they survive SIGKILL and snapshots).
    kinesis.delete_queue(QueueARN=arn)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.list_tags_for_resource(ResourceARN=arn)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.tag_resource(ResourceARN=arn, Tags={"a": "b"})


def test_create_queue_errors(unlimited_daemon):
    kinesis = unlimited_daemon.client()
    provisioned = unique("provisioned")
    kinesis.create_stream(StreamName=provisioned, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=provisioned, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    arn = kinesis.describe_stream_summary(StreamName=provisioned)["StreamDescriptionSummary"]["StreamARN"]
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.create_queue(QueueName=unique("q"), StreamConfigurationList=[{"StreamARN": arn}])
    missing = arn.replace(provisioned, unique("missing"))
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.create_queue(QueueName=unique("q"), StreamConfigurationList=[{"StreamARN": missing}])
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.create_queue(QueueName="bad name", StreamConfigurationList=[{"StreamARN": arn}])
    stream_arn = on_demand_stream(kinesis, unique("queued"))
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.create_queue(QueueName=unique("q"), StreamConfigurationList=[{"StreamARN": stream_arn}],
                             QueueAttributes={"VisibilityTimeoutSeconds": 43201})
    with pytest.raises(kinesis.exceptions.InvalidArgumentException):
        kinesis.create_queue(QueueName=unique("q"), StreamConfigurationList=[
            {"StreamARN": stream_arn, "StartingPosition": {"Type": "AT_TIMESTAMP"}}])
    with pytest.raises(kinesis.exceptions.InvalidArgumentException):
        kinesis.create_queue(QueueName=unique("q"), StreamConfigurationList=[{"StreamARN": stream_arn}],
                             QueueAttributes={"DeadLetterConfiguration": {"TargetType": "BUILT_IN"}})
    queue = new_queue(kinesis, stream_arn)
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.receive_queue_records(QueueARN=queue, Limit=11)
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=21)
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.acknowledge_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": "x"}] * 11)


def test_receive_and_acknowledge_every_record_once(unlimited_daemon):
    kinesis = unlimited_daemon.client()
    stream_arn = on_demand_stream(kinesis, unique("queued"))
    queue = new_queue(kinesis, stream_arn, {"VisibilityTimeoutSeconds": 60})
    sent = put(kinesis, stream_arn, 45)
    records = receive_all(kinesis, queue, 45)
    # Every record once, with its data, key, a stable id and a first receive.
    assert sorted(r["RecordId"] for r in records) == sorted(sent)
    for record in records:
        assert record["Data"] == sent[record["RecordId"]]
        assert record["PartitionKey"] == "key-" + record["Data"].decode()[1:]
        assert record["ReceiveCount"] == 1
        assert record["FirstReceiveTimestamp"] >= record["ApproximateArrivalTimestamp"].replace(microsecond=0)
    acknowledge(kinesis, queue, records)
    # Nothing left, and a repeated acknowledgement still succeeds (AWS: a retry must not fail).
    assert kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=1)["QueueRecords"] == []
    acknowledge(kinesis, queue, records[:3])
    # Per-entry answers: a forged handle fails alone.
    more = put(kinesis, stream_arn, 1, prefix="s")
    [record] = receive_all(kinesis, queue, 1)
    assert record["RecordId"] in more
    answer = kinesis.acknowledge_queue_records(
        QueueARN=queue, Entries=[{"ReceiptHandle": "not-a-handle"}, {"ReceiptHandle": record["ReceiptHandle"]}])
    assert [e["ReceiptHandle"] for e in answer["Successful"]] == [record["ReceiptHandle"]]
    assert [(e["ReceiptHandle"], e["ErrorCode"]) for e in answer["Failed"]] == [("not-a-handle", "InvalidArgumentException")]


def test_a_record_not_acknowledged_is_delivered_again_after_its_visibility_timeout(unlimited_daemon):
    kinesis = unlimited_daemon.client()
    stream_arn = on_demand_stream(kinesis, unique("queued"))
    queue = new_queue(kinesis, stream_arn, {"VisibilityTimeoutSeconds": 1,
                                            "DeadLetterConfiguration": {"TargetType": "NONE"}})
    put(kinesis, stream_arn, 1)
    [first] = receive_all(kinesis, queue, 1)
    # Invisible for 1 s, then the long poll returns it again.
    started = time.monotonic()
    [second] = kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=10)["QueueRecords"]
    assert time.monotonic() - started < 9
    assert second["RecordId"] == first["RecordId"] and second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["ReceiveCount"] == 2
    assert second["FirstReceiveTimestamp"] == first["FirstReceiveTimestamp"]
    # The first handle is stale now.
    answer = kinesis.acknowledge_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": first["ReceiptHandle"]}])
    assert [e["ErrorCode"] for e in answer["Failed"]] == ["InvalidArgumentException"]
    # A per-call visibility of 0 ... and UpdateQueueRecordsVisibility 0: visible at once.
    answer = kinesis.update_queue_records_visibility(
        QueueARN=queue, Entries=[{"ReceiptHandle": second["ReceiptHandle"], "VisibilityTimeoutSeconds": 0}])
    assert answer["Failed"] == [] and len(answer["Successful"]) == 1
    [third] = kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=1, VisibilityTimeoutSeconds=600)["QueueRecords"]
    assert third["RecordId"] == first["RecordId"] and third["ReceiveCount"] == 3
    # Extending it keeps it invisible.
    answer = kinesis.update_queue_records_visibility(
        QueueARN=queue, Entries=[{"ReceiptHandle": third["ReceiptHandle"], "VisibilityTimeoutSeconds": 600}])
    assert answer["Failed"] == []
    assert kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=1)["QueueRecords"] == []
    acknowledge(kinesis, queue, [third])


def test_records_received_max_receive_count_times_are_dead_lettered_and_can_be_restored(unlimited_daemon):
    kinesis = unlimited_daemon.client()
    stream_arn = on_demand_stream(kinesis, unique("queued"))
    queue = new_queue(kinesis, stream_arn, {"DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 1}})
    put(kinesis, stream_arn, 3)
    # Received once each with no visibility: the timeout ends at once, and with it the last
    # receive MaxReceiveCount allows.
    received = receive_all(kinesis, queue, 3, VisibilityTimeoutSeconds=0)
    assert kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=1)["QueueRecords"] == []
    dead = kinesis.receive_dead_letter_queue_records(QueueARN=queue, WaitTimeSeconds=1, Limit=10)["QueueRecords"]
    assert sorted(r["RecordId"] for r in dead) == sorted(r["RecordId"] for r in received)
    # A dead-letter handle is not for the queue side, and the other way round.
    answer = kinesis.acknowledge_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": dead[0]["ReceiptHandle"]}])
    assert [e["ErrorCode"] for e in answer["Failed"]] == ["InvalidArgumentException"]
    # Restore one, acknowledge one on the dead-letter side, hide the third again.
    restored, acked, hidden = dead
    answer = kinesis.restore_dead_letter_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": restored["ReceiptHandle"]}])
    assert answer["Failed"] == []
    answer = kinesis.acknowledge_dead_letter_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": acked["ReceiptHandle"]}])
    assert answer["Failed"] == []
    answer = kinesis.update_dead_letter_queue_records_visibility(
        QueueARN=queue, Entries=[{"ReceiptHandle": hidden["ReceiptHandle"], "VisibilityTimeoutSeconds": 0}])
    assert answer["Failed"] == []
    [again] = kinesis.receive_dead_letter_queue_records(QueueARN=queue, WaitTimeSeconds=1)["QueueRecords"]
    assert again["RecordId"] == hidden["RecordId"]
    # The restored record is back on the queue side with its receive count reset.
    [back] = kinesis.receive_queue_records(QueueARN=queue, WaitTimeSeconds=1, VisibilityTimeoutSeconds=60)["QueueRecords"]
    assert back["RecordId"] == restored["RecordId"] and back["ReceiveCount"] == 1
    acknowledge(kinesis, queue, [back])
    answer = kinesis.acknowledge_dead_letter_queue_records(QueueARN=queue, Entries=[{"ReceiptHandle": again["ReceiptHandle"]}])
    assert answer["Failed"] == []
    assert kinesis.receive_dead_letter_queue_records(QueueARN=queue, WaitTimeSeconds=1)["QueueRecords"] == []
