"""boto3, unchanged, against a three-node cluster (`--node-id`, `--peers`; issue 13): every
call may go to any member, as behind a load balancer, and each member forwards what it does
not lead to the member that does. A stream is created through one member and waited for
(`stream_exists`) through another; records are put through every member and read back
through another; a consumer is registered through one and described through another; the
stream is deleted through one and waited away (`stream_not_exists`) through another.

The waiters are the AWS SDKs' own: `stream_exists` stops at the first
ResourceNotFoundException, which a member that has not applied the creation yet would answer
but for `dispatch::catalog_read` in sluiced. Here that is a race the members usually win;
`server/tests/cluster.rs` forces it (a_created_stream_is_found_at_once_through_either_follower).
"""
import os
import socket
import subprocess
import tempfile
import time

import boto3
import pytest
from botocore.config import Config

from conftest import SLUICED, stop_cleanly, why_it_failed
from ports import free_ports

NODES = 3


class Cluster:
    def __init__(self):
        assert os.access(SLUICED, os.X_OK), f"{SLUICED} is not an executable: build sluiced or set $SLUICED"
        self.dir = tempfile.TemporaryDirectory(prefix="sluice-aws-cluster-")
        ports = free_ports(3 * NODES)
        self.members = [
            {"id": node + 1, "peer": ports[3 * node], "native": ports[3 * node + 1], "http": ports[3 * node + 2]}
            for node in range(NODES)
        ]
        peers = ",".join(
            f"{m['id']}=127.0.0.1:{m['peer']}/native@127.0.0.1:{m['native']}/http@127.0.0.1:{m['http']}"
            for m in self.members
        )
        self.processes, self.logs = [], []
        for m in self.members:
            log_path = os.path.join(self.dir.name, f"node{m['id']}.stderr")
            with open(log_path, "ab") as log:
                self.processes.append(subprocess.Popen(
                    [SLUICED, "--data-dir", os.path.join(self.dir.name, f"node{m['id']}"), "--cores", "1",
                     "--limits", "unlimited", "--node-id", str(m["id"]), "--peers", peers,
                     "--listen", f"127.0.0.1:{m['native']}", "--http-listen", f"127.0.0.1:{m['http']}",
                     "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"],
                    stderr=log,
                ))
            self.logs.append(log_path)
        for process, m, log_path in zip(self.processes, self.members, self.logs):
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, f"node {m['id']} exited during start-up:\n{why_it_failed(log_path)}"
                try:
                    socket.create_connection(("127.0.0.1", m["http"]), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"node {m['id']} did not start listening"
                    time.sleep(0.05)

    def client(self, node):
        """boto3 as an application configures it: the SDK's standard retries (a call that
        meets an election is retried), through member `node`."""
        config = Config(retries={"mode": "standard", "max_attempts": 5}, read_timeout=30)
        return boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{self.members[node]['http']}",
                            region_name="us-east-1", config=config)

    def stop(self):
        for process, log_path in zip(self.processes, self.logs):
            stop_cleanly(process, log_path)
        self.dir.cleanup()


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    yield cluster
    cluster.stop()


# The SDK's waiters, polling every 0.2 s instead of every 10 s.
QUICK = {"Delay": 0.2, "MaxAttempts": 300}


def read_shard(client, stream_name, shard_id, expected):
    """The records of one shard through `client`, from the trim horizon, once `expected` (a set
    of sequence numbers) are all there (a member serves a record once it applied it): sequence
    number -> data, each served once."""
    iterator = client.get_shard_iterator(StreamName=stream_name, ShardId=shard_id,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    found = {}
    deadline = time.monotonic() + 30
    while not expected <= found.keys():
        assert time.monotonic() < deadline, f"{shard_id}: {len(expected - found.keys())} records missing after 30 s"
        page = client.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            assert record["SequenceNumber"] not in found, f"{record['SequenceNumber']} served twice"
            found[record["SequenceNumber"]] = record["Data"]
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            time.sleep(0.05)
    return found


def test_every_call_through_any_member(cluster, stream_name):
    nodes = [cluster.client(node) for node in range(NODES)]
    nodes[0].create_stream(StreamName=stream_name, ShardCount=2)
    nodes[1].get_waiter("stream_exists").wait(StreamName=stream_name, WaiterConfig=QUICK)

    sent = {}
    for number in range(30):
        data = f"record {number}".encode()
        answer = nodes[number % NODES].put_record(StreamName=stream_name, Data=data, PartitionKey=f"key-{number}")
        sent[answer["SequenceNumber"]] = (answer["ShardId"], data)
    batch = [{"Data": f"batch {number}".encode(), "PartitionKey": f"batch-{number}"} for number in range(50)]
    answer = nodes[2].put_records(StreamName=stream_name, Records=batch)
    assert answer["FailedRecordCount"] == 0, answer
    for entry, record in zip(answer["Records"], batch):
        sent[entry["SequenceNumber"]] = (entry["ShardId"], record["Data"])

    # Read back through each member in turn: every acknowledged record, once, byte-exact.
    for reader in nodes:
        for shard in reader.list_shards(StreamName=stream_name)["Shards"]:
            shard_id = shard["ShardId"]
            expected = {sequence: data for sequence, (owner, data) in sent.items() if owner == shard_id}
            found = read_shard(reader, stream_name, shard_id, set(expected))
            assert {sequence: found[sequence] for sequence in expected} == expected

    stream_arn = nodes[2].describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = nodes[0].register_stream_consumer(StreamARN=stream_arn, ConsumerName="reader")["Consumer"]
    described = nodes[1].describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]
    assert described["ConsumerName"] == "reader"
    nodes[2].add_tags_to_stream(StreamName=stream_name, Tags={"team": "data"})
    assert nodes[2].list_tags_for_stream(StreamName=stream_name)["Tags"] == [{"Key": "team", "Value": "data"}]

    nodes[1].delete_stream(StreamName=stream_name, EnforceConsumerDeletion=True)
    nodes[2].get_waiter("stream_not_exists").wait(StreamName=stream_name, WaiterConfig=QUICK)
