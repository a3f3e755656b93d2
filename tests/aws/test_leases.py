"""Sluice's consumer-group lease operations (docs/clients.md) against a real sluiced, spoken
as any language would: JSON bodies POSTed with `X-Amz-Target: Sluice_20261201.<Operation>`,
signed with botocore's SigV4 signer like any AWS call (the daemon accepts SigV4 headers; see
docs/security.md). Covers fencing (a stale owner gets LeaseLostException), parent-before-child
after a split, stream deletion, and a SIGKILL of the daemon keeping every acknowledged lease
and checkpoint."""
import json
import signal
import subprocess
import time

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import SLUICED, free_port, stop_cleanly

TARGET = "Sluice_20261201."
CREDENTIALS = Credentials("sluice", "sluice")


class LeaseError(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def call(endpoint, operation, **body):
    """One signed Sluice call; the answer's JSON, or LeaseError with its `__type`."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation}
    request = AWSRequest(method="POST", url=endpoint + "/", data=data, headers=headers)
    SigV4Auth(CREDENTIALS, "kinesis", "us-east-1").add_auth(request)
    response = httpx.post(endpoint + "/", content=data, headers=dict(request.headers.items()), timeout=30)
    document = response.json() if response.content else {}
    if response.status_code != 200:
        raise LeaseError(response.status_code, document.get("__type"), document.get("message"))
    return document


def refused(endpoint, operation, **body):
    with pytest.raises(LeaseError) as raised:
        call(endpoint, operation, **body)
    return raised.value


class Node:
    """A sluiced of its own (this suite kills it), restartable on the same data directory."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.process = None
        self.start()

    def start(self):
        self.http_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.http_port}"
        # Every start appends to one log beside the data directory: a failure quotes it.
        self.log_path = self.data_dir + ".stderr"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [SLUICED, "--data-dir", self.data_dir, "--cores", "2", "--limits", "unlimited",
                 "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{self.http_port}",
                 "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"],
                stderr=log)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"sluiced exited during start-up: {self.process.returncode}"
            try:
                httpx.post(self.endpoint + "/", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sluiced did not start listening"
                time.sleep(0.05)

    def kinesis(self):
        return boto3.client("kinesis", endpoint_url=self.endpoint, region_name="us-east-1",
                            config=botocore_config())

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            stop_cleanly(self.process, self.log_path)


def botocore_config():
    from botocore.config import Config
    return Config(retries={"total_max_attempts": 1}, read_timeout=30)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    daemon = Node(str(tmp_path_factory.mktemp("leases") / "data"))
    yield daemon
    daemon.stop()


def make_stream(kinesis, name, shards):
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})


def shard(n):
    return f"shardId-{n:012d}"


def test_applications_are_created_described_listed_and_deleted(node):
    kinesis = node.kinesis()
    make_stream(kinesis, "apps", 2)
    created = call(node.endpoint, "CreateApplication", StreamName="apps", ApplicationName="billing",
                   InitialPosition={"Type": "TRIM_HORIZON"})["ApplicationDescription"]
    assert created["ApplicationStatus"] == "ACTIVE"
    assert created["LeaseCount"] == 2
    assert created["LeaseDurationMillis"] == 10_000
    assert created["InitialPosition"] == {"Type": "TRIM_HORIZON"}
    arn = created["ApplicationARN"]
    assert arn.startswith("arn:aws:kinesis:us-east-1:000000000000:stream/apps/application/billing:")
    assert call(node.endpoint, "DescribeApplication", ApplicationARN=arn)["ApplicationDescription"] == created
    assert refused(node.endpoint, "CreateApplication", StreamName="apps",
                   ApplicationName="billing").code == "ResourceInUseException"
    call(node.endpoint, "CreateApplication", StreamName="apps", ApplicationName="audit")
    listed = call(node.endpoint, "ListApplications", StreamName="apps", MaxResults=1)
    assert [a["ApplicationName"] for a in listed["Applications"]] == ["audit"]
    rest = call(node.endpoint, "ListApplications", StreamName="apps", NextToken=listed["NextToken"])
    assert [a["ApplicationName"] for a in rest["Applications"]] == ["billing"] and "NextToken" not in rest
    leases = call(node.endpoint, "ListLeases", ApplicationARN=arn)["Leases"]
    assert [lease["LeaseKey"] for lease in leases] == [shard(0), shard(1)]
    assert all(lease["Checkpoint"] == "TRIM_HORIZON" and lease["LeaseCounter"] == 0 for lease in leases)
    assert all("LeaseOwner" not in lease for lease in leases)
    call(node.endpoint, "DeleteApplication", StreamName="apps", ApplicationName="audit")
    assert refused(node.endpoint, "DescribeApplication", StreamName="apps",
                   ApplicationName="audit").code == "ResourceNotFoundException"
    # Bad input: the shape checker answers as AWS would.
    bad = refused(node.endpoint, "CreateApplication", StreamName="apps", ApplicationName="a b",
                  LeaseDurationMillis=5)
    assert bad.code == "ValidationException" and "2 validation errors" in bad.message
    assert refused(node.endpoint, "TakeLease", ApplicationARN=arn, LeaseKey=shard(0),
                   WorkerId="w").code == "ValidationException"
    assert refused(node.endpoint, "NoSuchLeaseOperation").code == "UnknownOperationException"


def test_leases_are_fenced_by_their_counter(node):
    kinesis = node.kinesis()
    make_stream(kinesis, "fenced", 1)
    app = {"StreamName": "fenced", "ApplicationName": "app"}
    # Leases long enough that none lapses during the test however slow the machine is.
    call(node.endpoint, "CreateApplication", **app, LeaseDurationMillis=600_000)
    taken = call(node.endpoint, "TakeLease", **app, LeaseKey=shard(0), WorkerId="a", LeaseCounter=0)["Lease"]
    assert taken["LeaseOwner"] == "a" and taken["LeaseCounter"] == 1
    # A second take with the same observation loses: the counter moved.
    assert refused(node.endpoint, "TakeLease", **app, LeaseKey=shard(0), WorkerId="b",
                   LeaseCounter=0).code == "ResourceInUseException"
    # A take at the current counter of a live lease is refused too.
    assert refused(node.endpoint, "TakeLease", **app, LeaseKey=shard(0), WorkerId="b",
                   LeaseCounter=1).code == "ResourceInUseException"
    put = kinesis.put_record(StreamName="fenced", Data=b"x", PartitionKey="k")
    checkpointed = call(node.endpoint, "CheckpointLease", **app, LeaseKey=shard(0), WorkerId="a", LeaseCounter=1,
                        Checkpoint=put["SequenceNumber"], CheckpointSubSequenceNumber=2)["Lease"]
    assert checkpointed["Checkpoint"] == put["SequenceNumber"]
    assert checkpointed["CheckpointSubSequenceNumber"] == 2
    renewed = call(node.endpoint, "RenewLease", **app, LeaseKey=shard(0), WorkerId="a", LeaseCounter=1)["Lease"]
    assert renewed["LeaseCounter"] == 1, "renewals do not move the fencing token"
    # b steals (balancing): a is fenced from then on.
    stolen = call(node.endpoint, "StealLease", **app, LeaseKey=shard(0), WorkerId="b", LeaseOwner="a",
                  LeaseCounter=1)["Lease"]
    assert stolen["LeaseOwner"] == "b" and stolen["LeaseCounter"] == 2
    assert stolen["OwnerSwitchesSinceCheckpoint"] == 1
    for operation, extra in [("CheckpointLease", {"Checkpoint": put["SequenceNumber"]}), ("RenewLease", {}),
                             ("ReleaseLease", {})]:
        lost = refused(node.endpoint, operation, **app, LeaseKey=shard(0), WorkerId="a", LeaseCounter=1, **extra)
        assert (lost.status, lost.code) == (400, "LeaseLostException"), operation
        assert "held by" in lost.message and '"b"' in lost.message
    # Checkpoints never move backwards, and SHARD_END needs a closed shard.
    backwards = refused(node.endpoint, "CheckpointLease", **app, LeaseKey=shard(0), WorkerId="b", LeaseCounter=2,
                        Checkpoint=put["SequenceNumber"], CheckpointSubSequenceNumber=1)
    assert backwards.code == "InvalidArgumentException"
    assert refused(node.endpoint, "CheckpointLease", **app, LeaseKey=shard(0), WorkerId="b", LeaseCounter=2,
                   Checkpoint="SHARD_END").code == "InvalidArgumentException"
    released = call(node.endpoint, "ReleaseLease", **app, LeaseKey=shard(0), WorkerId="b", LeaseCounter=2)["Lease"]
    assert "LeaseOwner" not in released and released["LeaseCounter"] == 3
    # An owner that stops renewing loses the lease to a take once its duration has passed (the
    # sleep is a lower bound: a slow machine only makes the lease older).
    short = {"StreamName": "fenced", "ApplicationName": "short"}
    call(node.endpoint, "CreateApplication", **short, LeaseDurationMillis=1_000)
    call(node.endpoint, "TakeLease", **short, LeaseKey=shard(0), WorkerId="c", LeaseCounter=0)
    time.sleep(1.2)
    retaken = call(node.endpoint, "TakeLease", **short, LeaseKey=shard(0), WorkerId="d", LeaseCounter=1)["Lease"]
    assert retaken["LeaseOwner"] == "d" and retaken["LeaseCounter"] == 2
    assert refused(node.endpoint, "RenewLease", **short, LeaseKey=shard(0), WorkerId="c",
                   LeaseCounter=1).code == "LeaseLostException"


def test_a_split_adds_child_leases_that_wait_for_their_parent(node):
    kinesis = node.kinesis()
    make_stream(kinesis, "split", 1)
    app = {"StreamName": "split", "ApplicationName": "app"}
    call(node.endpoint, "CreateApplication", **app, InitialPosition={"Type": "TRIM_HORIZON"})
    call(node.endpoint, "TakeLease", **app, LeaseKey=shard(0), WorkerId="a", LeaseCounter=0)
    kinesis.split_shard(StreamName="split", ShardToSplit=shard(0), NewStartingHashKey=str(2 ** 127))
    leases = {lease["LeaseKey"]: lease for lease in call(node.endpoint, "ListLeases", **app)["Leases"]}
    assert sorted(leases) == [shard(0), shard(1), shard(2)]
    assert leases[shard(0)]["ShardClosed"] is True
    assert sorted(leases[shard(0)]["ChildShardIds"]) == [shard(1), shard(2)]
    assert leases[shard(1)]["ParentShardIds"] == [shard(0)]
    assert leases[shard(1)]["Checkpoint"] == "TRIM_HORIZON"
    blocked = refused(node.endpoint, "TakeLease", **app, LeaseKey=shard(1), WorkerId="b", LeaseCounter=0)
    assert blocked.code == "ResourceInUseException" and "SHARD_END" in blocked.message
    call(node.endpoint, "CheckpointLease", **app, LeaseKey=shard(0), WorkerId="a", LeaseCounter=1,
         Checkpoint="SHARD_END")
    child = call(node.endpoint, "TakeLease", **app, LeaseKey=shard(1), WorkerId="b", LeaseCounter=0)["Lease"]
    assert child["LeaseOwner"] == "b"


def test_deleting_the_stream_deletes_its_applications(node):
    kinesis = node.kinesis()
    make_stream(kinesis, "doomed", 1)
    call(node.endpoint, "CreateApplication", StreamName="doomed", ApplicationName="app")
    kinesis.delete_stream(StreamName="doomed")
    make_stream(kinesis, "doomed", 1)
    # The stream of the same name is another stream: the old application went with the old one.
    assert call(node.endpoint, "ListApplications", StreamName="doomed")["Applications"] == []
    assert refused(node.endpoint, "ListLeases", StreamName="doomed",
                   ApplicationName="app").code == "ResourceNotFoundException"


def test_sigkill_keeps_every_acknowledged_lease_and_checkpoint(tmp_path):
    node = Node(str(tmp_path / "data"))
    try:
        kinesis = node.kinesis()
        make_stream(kinesis, "durable", 4)
        app = {"StreamName": "durable", "ApplicationName": "app"}
        created = call(node.endpoint, "CreateApplication", **app, LeaseDurationMillis=600_000)
        expected = {}
        for n in range(4):
            call(node.endpoint, "TakeLease", **app, LeaseKey=shard(n), WorkerId=f"w{n}", LeaseCounter=0)
        sequence = kinesis.put_record(StreamName="durable", Data=b"x", PartitionKey="k",
                                      ExplicitHashKey="0")["SequenceNumber"]
        for round_number in range(25):
            for n in range(4):
                lease = call(node.endpoint, "CheckpointLease", **app, LeaseKey=shard(n), WorkerId=f"w{n}",
                             LeaseCounter=1, Checkpoint=sequence, CheckpointSubSequenceNumber=round_number)["Lease"]
                expected[lease["LeaseKey"]] = lease
        # One lease changes hands just before the kill.
        expected[shard(3)] = call(node.endpoint, "StealLease", **app, LeaseKey=shard(3), WorkerId="thief",
                                  LeaseOwner="w3", LeaseCounter=1)["Lease"]
        node.kill()
        node.start()
        after = {lease["LeaseKey"]: lease for lease in call(node.endpoint, "ListLeases", **app)["Leases"]}
        assert after == expected
        described = call(node.endpoint, "DescribeApplication", **app)["ApplicationDescription"]
        assert described == created["ApplicationDescription"]
        # Fencing holds across the restart: the robbed owner is still refused.
        assert refused(node.endpoint, "RenewLease", **app, LeaseKey=shard(3), WorkerId="w3",
                       LeaseCounter=1).code == "LeaseLostException"
        call(node.endpoint, "RenewLease", **app, LeaseKey=shard(3), WorkerId="thief", LeaseCounter=2)
        # A second application created after the restart gets an id of its own.
        call(node.endpoint, "CreateApplication", StreamName="durable", ApplicationName="second")
        node.kill()
        node.start()
        names = [a["ApplicationName"] for a in call(node.endpoint, "ListApplications", StreamName="durable")
                 ["Applications"]]
        assert names == ["app", "second"]
    finally:
        node.stop()
