"""Stream and account settings against a real sluiced with boto3's own operations (botocore
1.44.5's model): UpdateMaxRecordSize (records up to 10 MiB through PutRecord(s) and
GetRecords), UpdateStreamRecordDistributionStrategy (AUTO spreads one key over every shard),
UpdateAccountSettings with its commitment window, UpdateStreamWarmThroughput (the stream splits
to the target), and all of them kept across a SIGKILL of the daemon."""
import signal
import subprocess
import time
import uuid

import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config

from conftest import SLUICED, free_port

MIB = 1 << 20
DAY_S = 24 * 3600


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(raised):
    return raised.value.response["Error"]["Code"]


def summary(kinesis, name):
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def wait_active(kinesis, name, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while (status := summary(kinesis, name)["StreamStatus"]) != "ACTIVE":
        assert time.monotonic() < deadline, f"{name} still {status}"
        time.sleep(0.1)


def make_stream(kinesis, name, on_demand, **extra):
    if on_demand:
        kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"}, **extra)
    else:
        kinesis.create_stream(StreamName=name, ShardCount=1, **extra)
    wait_active(kinesis, name)
    return summary(kinesis, name)["StreamARN"]


def records_of(kinesis, name):
    """Every record of every shard: {shard id: [records]}."""
    out = {}
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = []
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator)
            records.extend(answer["Records"])
            if answer["MillisBehindLatest"] == 0 and not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
        out[shard["ShardId"]] = records
    return out


class Node:
    """A sluiced of its own (this suite kills it), restartable on the same data directory."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.start()

    def start(self):
        self.http_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.http_port}"
        self.process = subprocess.Popen(
            [SLUICED, "--data-dir", self.data_dir, "--cores", "2", "--limits", "unlimited",
             "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{self.http_port}",
             "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"])
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"sluiced exited during start-up: {self.process.returncode}"
            try:
                httpx.post(self.endpoint + "/", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sluiced did not start listening"
                time.sleep(0.05)

    def kinesis(self, **config):
        settings = {"retries": {"total_max_attempts": 1}, "read_timeout": 60}
        settings.update(config)
        return boto3.client("kinesis", endpoint_url=self.endpoint, region_name="us-east-1", config=Config(**settings))

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            assert self.process.wait(timeout=30) == 0, "sluiced did not exit cleanly on SIGTERM"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    daemon = Node(str(tmp_path_factory.mktemp("settings") / "data"))
    yield daemon
    daemon.stop()


def test_max_record_size_bounds_what_put_record_and_put_records_accept(fast, unlimited_daemon):
    raw = unlimited_daemon.client(parameter_validation=False)
    name = unique("big")
    arn = make_stream(fast, name, on_demand=False)
    assert summary(fast, name)["MaxRecordSizeInKiB"] == 1024
    key = "k"
    over_default = b"x" * MIB  # 1 MiB of data plus the key: one byte over the default
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        fast.put_record(StreamName=name, Data=over_default, PartitionKey=key)
    assert error_code(raised) == "ValidationException"
    assert "1048576" in raised.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        fast.put_records(StreamName=name, Records=[{"Data": b"small", "PartitionKey": key},
                                                   {"Data": over_default, "PartitionKey": key}])
    assert error_code(raised) == "ValidationException"
    assert "records.2.member.data" in raised.value.response["Error"]["Message"]

    fast.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=10240)
    assert summary(fast, name)["MaxRecordSizeInKiB"] == 10240
    largest = bytes(range(256)) * (10 * MIB // 256 - 1) + b"y" * (256 - len(key))
    assert len(largest) + len(key) == 10 * MIB
    fast.put_record(StreamName=name, Data=over_default, PartitionKey=key)
    fast.put_records(StreamName=name, Records=[{"Data": largest, "PartitionKey": key}])
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        raw.put_record(StreamName=name, Data=largest + b"!", PartitionKey=key)
    assert error_code(raised) == "ValidationException"
    stored = records_of(fast, name)["shardId-000000000000"]
    assert [len(r["Data"]) for r in stored] == [MIB, len(largest)]
    assert stored[1]["Data"] == largest

    # Lowering it bounds the next records again; what is stored stays readable.
    fast.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=2048)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        fast.put_record(StreamName=name, Data=b"z" * (3 * MIB), PartitionKey=key)
    assert error_code(raised) == "ValidationException"
    fast.put_record(StreamName=name, Data=b"z" * (2 * MIB - 1), PartitionKey=key)

    # The model's range, a missing stream, and CreateStream's own MaxRecordSizeInKiB.
    for kib in (1023, 10241):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            raw.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=kib)
        assert error_code(raised) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        fast.update_max_record_size(StreamARN=arn.replace(name, name + "-missing"), MaxRecordSizeInKiB=2048)
    assert error_code(raised) == "ResourceNotFoundException"
    created = unique("created")
    make_stream(fast, created, on_demand=True, MaxRecordSizeInKiB=4096)
    assert summary(fast, created)["MaxRecordSizeInKiB"] == 4096


def test_auto_distribution_spreads_one_key_over_every_shard(fast):
    name = unique("auto")
    arn = make_stream(fast, name, on_demand=True)
    assert summary(fast, name)["RecordDistributionStrategy"] == "USER_PARTITION_KEY"
    fast.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="AUTO")
    assert summary(fast, name)["RecordDistributionStrategy"] == "AUTO"
    entries = [{"Data": f"{i}".encode(), "PartitionKey": "one-key", "ExplicitHashKey": "0"} for i in range(400)]
    assert fast.put_records(StreamName=name, Records=entries)["FailedRecordCount"] == 0
    counts = {shard: len(records) for shard, records in records_of(fast, name).items()}
    assert len(counts) == 4 and sum(counts.values()) == 400
    assert min(counts.values()) >= 50, counts  # one key and one explicit hash key, yet every shard
    # Back to keys: the same key goes to one shard again.
    fast.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="USER_PARTITION_KEY")
    shards = {fast.put_record(StreamName=name, Data=b"d", PartitionKey="one-key")["ShardId"] for _ in range(20)}
    assert len(shards) == 1
    # AUTO is for ON_DEMAND streams, and a stream using it cannot become PROVISIONED.
    provisioned = unique("prov")
    provisioned_arn = make_stream(fast, provisioned, on_demand=False)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        fast.update_stream_record_distribution_strategy(StreamARN=provisioned_arn, RecordDistributionStrategy="AUTO")
    assert error_code(raised) == "InvalidArgumentException"
    fast.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="AUTO")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        fast.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert error_code(raised) == "InvalidArgumentException"


def test_account_commitment_and_warm_throughput_survive_a_kill(node):
    kinesis = node.kinesis()
    assert kinesis.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"] == "DISABLED"
    name = unique("warm")
    arn = make_stream(kinesis, name, on_demand=True)
    assert "WarmThroughput" not in summary(kinesis, name)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=8)
    assert error_code(raised) == "InvalidArgumentException"
    assert "MinimumThroughputBillingCommitment" in raised.value.response["Error"]["Message"]

    enabled = kinesis.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    commitment = enabled["MinimumThroughputBillingCommitment"]
    assert commitment["Status"] == "ENABLED"
    window = commitment["EarliestAllowedEndAt"] - commitment["StartedAt"]
    assert window.total_seconds() == DAY_S
    assert summary(kinesis, name)["WarmThroughput"] == {"TargetMiBps": 4, "CurrentMiBps": 4}

    answer = kinesis.update_stream_warm_throughput(StreamName=name, WarmThroughputMiBps=8)
    assert answer["StreamName"] == name and answer["StreamARN"] == arn
    assert answer["WarmThroughput"] == {"TargetMiBps": 8, "CurrentMiBps": 4}
    wait_active(kinesis, name)
    after = summary(kinesis, name)
    assert after["OpenShardCount"] == 8
    assert after["WarmThroughput"] == {"TargetMiBps": 8, "CurrentMiBps": 8}
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=10 * 1024 + 1)
    assert error_code(raised) == "LimitExceededException"
    provisioned = unique("prov")
    provisioned_arn = make_stream(kinesis, provisioned, on_demand=False)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kinesis.update_stream_warm_throughput(StreamARN=provisioned_arn, WarmThroughputMiBps=8)
    assert error_code(raised) == "InvalidArgumentException"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kinesis.update_stream_warm_throughput(StreamName=name + "-missing", WarmThroughputMiBps=8)
    assert error_code(raised) == "ResourceNotFoundException"

    # Disabling inside the 24-hour window only schedules the end.
    disabled = kinesis.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})
    pending = disabled["MinimumThroughputBillingCommitment"]
    assert pending["Status"] == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    assert pending["EarliestAllowedEndAt"] == commitment["EarliestAllowedEndAt"]
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=5120)
    kinesis.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="AUTO")

    node.kill()
    node.start()
    kinesis = node.kinesis()
    settings = kinesis.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert settings["Status"] == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
    assert settings["StartedAt"] == commitment["StartedAt"]
    kept = summary(kinesis, name)
    assert kept["MaxRecordSizeInKiB"] == 5120
    assert kept["RecordDistributionStrategy"] == "AUTO"
    assert kept["WarmThroughput"] == {"TargetMiBps": 8, "CurrentMiBps": 8}
    assert kept["OpenShardCount"] == 8
    # Enabling again cancels the pending end; releasing capacity merges back to the target.
    again = kinesis.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    assert again["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
    kinesis.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=4)
    wait_active(kinesis, name)
    assert summary(kinesis, name)["OpenShardCount"] == 4
