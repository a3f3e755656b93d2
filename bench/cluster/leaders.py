#!/usr/bin/env python3
"""How long a 3-node cluster keeps clients waiting on its leaders, two daemon builds A and B
measured in one run, interleaved A B B A ... (each round swaps which goes first).

Each run starts three `sluiced --cores 1` on loopback, every member forwarding to the others
(`--peers` with native and HTTP addresses), and drives them with boto3 through one member, as
an AWS SDK behind one endpoint does:

  first-write  per stream (STREAMS of 2 shards): CreateStream, then a PutRecord to each shard at
               once (boto3's default retries); the time from CreateStream until both are
               acknowledged, and the retries boto3 made.
  split        per stream (STREAMS of 1 shard, ACTIVE and written once): SplitShard at 2^127,
               then puts to keys 0 and 2^127 every 10 ms until one lands on each child; the
               time from SplitShard, and boto3's retries.
  rebalance    one stream of SHARDS shards; once settled, member 1 is SIGKILLed and restarted
               3 s later; the time from the restart until every member leads within one group
               of the others (`sluice_raft_groups_led`). With --load, a writer puts PutRecords
               of one record per shard through member 2 the whole time (boto3 without retries),
               and the records that failed from the restart until then are counted, with why.

  catalog-reads  one stream of 4 shards; through each member in turn, READS calls each of
               DescribeStreamSummary and ListShards, one at a time (boto3); the p50 and p99 of
               each, per member (one of the three leads the catalog).

usage: bench/cluster/leaders.py first-write|split|rebalance|catalog-reads [--load] A B [ROUNDS]
       (A, B: sluiced binaries, e.g. target/release/sluiced of two commits; ROUNDS: 2)
env:   STREAMS (8), SHARDS (120), READS (500); needs boto3 (pip install boto3).
Figures from it: docs/replication.md ("Forwarding") and docs/cluster.md (leader balancing).
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

# The AWS suites' port chooser: below the ephemeral range, refusing ports in TIME_WAIT (a
# bind(0) port can be taken by an outbound connection before sluiced binds it).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "aws"))
from ports import free_ports  # noqa: E402

STREAMS = int(os.environ.get("STREAMS", "8"))
SHARDS = int(os.environ.get("SHARDS", "120"))
READS = int(os.environ.get("READS", "500"))
IDS = [1, 2, 3]


class Cluster:
    def __init__(self, binary):
        self.binary = binary
        self.root = tempfile.mkdtemp(prefix="sluice-leaders-")
        kinds = ("native", "http", "peer", "metrics")
        chosen = iter(free_ports(len(kinds) * len(IDS)))
        ports = {i: {kind: next(chosen) for kind in kinds} for i in IDS}
        self.ports = ports
        self.peers = ",".join(
            f"{i}=127.0.0.1:{ports[i]['peer']}/native@127.0.0.1:{ports[i]['native']}/http@127.0.0.1:{ports[i]['http']}"
            for i in IDS
        )
        self.procs = {i: self.start(i) for i in IDS}

    def start(self, i):
        p = self.ports[i]
        return subprocess.Popen(
            [self.binary, "--data-dir", f"{self.root}/n{i}", "--cores", "1", "--log-level", "warn",
             "--listen", f"127.0.0.1:{p['native']}", "--http-listen", f"127.0.0.1:{p['http']}",
             "--metrics-listen", f"127.0.0.1:{p['metrics']}", "--node-id", str(i), "--peers", self.peers],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self, i, retries=True):
        config = None if retries else botocore.config.Config(retries={"max_attempts": 0})
        return boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{self.ports[i]['http']}",
                            region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b",
                            config=config)

    def led(self, i):
        url = f"http://127.0.0.1:{self.ports[i]['metrics']}/metrics"
        text = urllib.request.urlopen(url, timeout=2).read().decode()
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("sluice_raft_groups_led"))

    def restart_after_kill(self, i, down_s):
        self.procs[i].kill()
        self.procs[i].wait()
        time.sleep(down_s)
        self.procs[i] = self.start(i)

    def stop(self):
        for proc in self.procs.values():
            proc.kill()
        for proc in self.procs.values():
            proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def until_answered(call, limit_s=30):
    """`call()` until it does not raise (members starting, the catalog electing)."""
    started = time.monotonic()
    while True:
        try:
            return call()
        except (botocore.exceptions.ClientError, botocore.exceptions.EndpointConnectionError):
            if time.monotonic() - started > limit_s:
                raise
            time.sleep(0.1)


def wait_active(client, name):
    while client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.05)


def first_write(cluster, _load):
    c = cluster.client(1)
    until_answered(c.list_streams)
    times, retries = [], 0
    for n in range(STREAMS):
        started = time.monotonic()
        retries += until_answered(lambda: c.create_stream(StreamName=f"s{n}", ShardCount=2))[
            "ResponseMetadata"]["RetryAttempts"]
        for key in ["0", str(2**127)]:
            answer = c.put_record(StreamName=f"s{n}", Data=b"x", PartitionKey="k", ExplicitHashKey=key)
            retries += answer["ResponseMetadata"]["RetryAttempts"]
        times.append(1000 * (time.monotonic() - started))
    return f"CreateStream to both shards written: median {statistics.median(times):.0f} ms, " \
           f"max {max(times):.0f} ms; boto3 retries {retries}"


def split(cluster, _load):
    c = cluster.client(1)
    until_answered(c.list_streams)
    times, retries = [], 0
    for n in range(STREAMS):
        name = f"s{n}"
        until_answered(lambda: c.create_stream(StreamName=name, ShardCount=1))
        wait_active(c, name)
        c.put_record(StreamName=name, Data=b"x", PartitionKey="k")
        started = time.monotonic()
        c.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
        landed = set()
        while len(landed) < 2:
            for key in {"0", str(2**127)} - landed:
                answer = c.put_record(StreamName=name, Data=b"y", PartitionKey="k", ExplicitHashKey=key)
                retries += answer["ResponseMetadata"]["RetryAttempts"]
                if answer["ShardId"] != "shardId-000000000000":
                    landed.add(key)
            time.sleep(0.01)
        times.append(1000 * (time.monotonic() - started))
    return f"SplitShard to both children written: median {statistics.median(times):.0f} ms, " \
           f"max {max(times):.0f} ms; boto3 retries {retries}"


def rebalance(cluster, load):
    c = cluster.client(2)
    until_answered(lambda: c.create_stream(StreamName="s", ShardCount=SHARDS))
    for i in IDS:
        wait_active(cluster.client(i), "s")
    keys = [str((2**128 // SHARDS) * k + 1) for k in range(SHARDS)]
    stop, counting = threading.Event(), threading.Event()
    counts = {"ok": 0, "failed": 0}
    # Why records failed while counting: each distinct message (its addresses and shard left
    # out), with how many records got it.
    why = {}

    def writer():
        w = cluster.client(2, retries=False)
        records = [{"Data": b"x" * 100, "PartitionKey": "k", "ExplicitHashKey": key} for key in keys]
        while not stop.is_set():
            try:
                answer = w.put_records(StreamName="s", Records=records)
                failed = answer["FailedRecordCount"]
                messages = [entry.get("ErrorMessage", "") for entry in answer["Records"] if "ErrorCode" in entry]
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
                failed = len(records)
                messages = [str(error)] * failed
            if counting.is_set():
                counts["failed"] += failed
                counts["ok"] += len(records) - failed
                for message in messages:
                    message = re.sub(r"127\.0\.0\.1:\d+", "ADDRESS", message)
                    message = re.sub(r"(?i)shard uid \d+", "shard uid N", message)
                    why[message] = why.get(message, 0) + 1

    thread = threading.Thread(target=writer) if load else None
    if thread:
        thread.start()
    try:
        # Past LEADER_BALANCE_SETTLE_MS (10 s): the groups may move.
        time.sleep(12)
        cluster.restart_after_kill(1, 3)
        counting.set()
        started = time.monotonic()
        while time.monotonic() - started < 600:
            try:
                led = [cluster.led(i) for i in IDS]
                if max(led) - min(led) <= 1 and led[0] > 0:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        took = time.monotonic() - started
        counting.clear()
    finally:
        stop.set()
        if thread:
            thread.join()
    line = f"even {took:.1f} s after the restart"
    if load:
        total = counts["ok"] + counts["failed"]
        line += f"; meanwhile {counts['ok']} records acknowledged, {counts['failed']} failed " \
                f"({100 * counts['failed'] / max(1, total):.2f} %)"
        for message, count in sorted(why.items(), key=lambda item: -item[1]):
            line += f"\n    {count} x {message}"
    return line


def catalog_reads(cluster, _load):
    until_answered(lambda: cluster.client(1).create_stream(StreamName="s", ShardCount=4))
    for i in IDS:
        wait_active(cluster.client(i), "s")
    calls = {
        "DescribeStreamSummary": lambda c: c.describe_stream_summary(StreamName="s"),
        "ListShards": lambda c: c.list_shards(StreamName="s"),
    }
    lines = []
    for i in IDS:
        c = cluster.client(i)
        parts = []
        for name, call in calls.items():
            for _ in range(20):  # connections opened, code paths warm
                call(c)
            times = []
            for _ in range(READS):
                started = time.perf_counter()
                call(c)
                times.append(1000 * (time.perf_counter() - started))
            times.sort()
            p50, p99 = times[len(times) // 2], times[min(len(times) - 1, len(times) * 99 // 100)]
            parts.append(f"{name} p50 {p50:.2f} ms p99 {p99:.2f} ms")
        lines.append(f"member {i}: " + "; ".join(parts))
    return "\n    " + "\n    ".join(lines)


def main():
    args = [arg for arg in sys.argv[1:] if arg != "--load"]
    load = "--load" in sys.argv[1:]
    measures = {"first-write": first_write, "split": split, "rebalance": rebalance, "catalog-reads": catalog_reads}
    if len(args) < 3 or args[0] not in measures:
        sys.exit(__doc__)
    measure = measures[args[0]]
    binaries = {"A": args[1], "B": args[2]}
    rounds = int(args[3]) if len(args) > 3 else 2
    for round_ in range(rounds):
        for label in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
            cluster = Cluster(binaries[label])
            try:
                print(f"round {round_} {label}: {measure(cluster, load)}", flush=True)
            finally:
                cluster.stop()


if __name__ == "__main__":
    main()
