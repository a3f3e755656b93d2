"""Lease operation latency over HTTP against a real sluiced: W worker threads, each holding one
lease of an 8-shard stream, send RenewLease and CheckpointLease back to back (one keep-alive
connection each, JSON bodies) for D seconds; prints p50/p99/max per operation and calls/s.

    .venv/bin/python bench/leases/latency.py --sluiced target/release/sluiced --workers 1 8

Client overhead (Python, httpx) is part of every figure: it is what a worker in any language
sees, not the daemon's own time.
"""
import argparse
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import httpx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(client, endpoint, target, **body):
    response = client.post(endpoint + "/", content=json.dumps(body),
                           headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    assert response.status_code == 200, response.text
    return response.json()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sluiced", default="target/release/sluiced")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--data-dir", default=None, help="default: a temporary directory under ./target")
    args = parser.parse_args()
    os.makedirs("target", exist_ok=True)
    data = args.data_dir or tempfile.mkdtemp(prefix="lease-latency-", dir="target")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    daemon = subprocess.Popen([args.sluiced, "--data-dir", os.path.join(data, "data"), "--cores", "2",
                               "--limits", "unlimited", "--listen", f"127.0.0.1:{free_port()}",
                               "--http-listen", f"127.0.0.1:{port}", "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"])
    try:
        with httpx.Client() as client:
            while True:
                try:
                    client.post(endpoint + "/")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            call(client, endpoint, "Kinesis_20131202.CreateStream", StreamName="bench", ShardCount=8)
            time.sleep(0.5)
            put = call(client, endpoint, "Kinesis_20131202.PutRecord", StreamName="bench", Data="eA==",
                       PartitionKey="k")
            sequence = put["SequenceNumber"]
            # Baseline in the same run: a PutRecord is one durable journal append, as every
            # lease command is, so the ratio shows what the lease path adds.
            baseline = []
            stop = time.monotonic() + args.seconds / 2
            while time.monotonic() < stop:
                started = time.perf_counter()
                call(client, endpoint, "Kinesis_20131202.PutRecord", StreamName="bench", Data="eA==",
                     PartitionKey="k")
                baseline.append((time.perf_counter() - started) * 1000)
            print(f"workers=1 PutRecord (baseline): n={len(baseline)} p50={percentile(baseline, 0.5):.2f} ms "
                  f"p99={percentile(baseline, 0.99):.2f} ms")
        for round_number, workers in enumerate(args.workers):
            app = {"StreamName": "bench", "ApplicationName": f"app{round_number}"}
            with httpx.Client() as client:
                call(client, endpoint, "Sluice_20261201.CreateApplication", **app, LeaseDurationMillis=600_000)
            samples = {"RenewLease": [], "CheckpointLease": []}
            lock = threading.Lock()
            stop = time.monotonic() + args.seconds

            def worker(n):
                key = f"shardId-{n:012d}"
                mine = {"RenewLease": [], "CheckpointLease": []}
                with httpx.Client() as client:
                    base = {**app, "LeaseKey": key, "WorkerId": f"w{n}"}
                    call(client, endpoint, "Sluice_20261201.TakeLease", **base, LeaseCounter=0)
                    sub = 0
                    while time.monotonic() < stop:
                        started = time.perf_counter()
                        call(client, endpoint, "Sluice_20261201.RenewLease", **base, LeaseCounter=1)
                        mine["RenewLease"].append(time.perf_counter() - started)
                        sub += 1
                        started = time.perf_counter()
                        call(client, endpoint, "Sluice_20261201.CheckpointLease", **base, LeaseCounter=1,
                             Checkpoint=sequence, CheckpointSubSequenceNumber=sub)
                        mine["CheckpointLease"].append(time.perf_counter() - started)
                with lock:
                    for name, values in mine.items():
                        samples[name] += values

            threads = [threading.Thread(target=worker, args=(n % 8,)) for n in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for name, values in samples.items():
                ms = [v * 1000 for v in values]
                print(f"workers={workers} {name}: n={len(ms)} p50={percentile(ms, 0.5):.2f} ms "
                      f"p99={percentile(ms, 0.99):.2f} ms max={max(ms):.2f} ms "
                      f"({len(ms) / args.seconds:.0f} calls/s)")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


if __name__ == "__main__":
    main()
