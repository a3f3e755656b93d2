#!/usr/bin/env python3
"""The AWS JSON 1.1 calls bench/peers/run.sh makes besides the load itself, and its table.

    kinesis.py create ENDPOINT STREAM SHARDS     create a stream, wait until it is ACTIVE
    kinesis.py count ENDPOINT STREAM BYTES       read every shard from TRIM_HORIZON until two reads
                                                 agree; print the record count (exit 1 if a record
                                                 is not BYTES long)
    kinesis.py delete ENDPOINT STREAM            delete a stream (its records are counted already)
    kinesis.py table RESULTS [MARKDOWN]          the table of ratios, from run.sh's result lines

Standard library only, so that it runs with any python3. It sends the same SigV4-shaped
Authorization header as the wrk scripts: kinesalite and moto insist on one (moto picks the
service from its credential scope), none of the servers checks the signature.
"""

import base64
import json
import statistics
import sys
import time
import urllib.error
import urllib.request

AUTH = (
    "AWS4-HMAC-SHA256 Credential=sluice/20240101/us-east-1/kinesis/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
)

# Kinesis' own GetRecords maximum; every peer accepts it.
GET_RECORDS_LIMIT = 10_000

# A peer that needs longer than this for one call is broken, not slow.
CALL_TIMEOUT_S = 300


# moto answers 500 to a GetRecords that meets a PutRecords still being stored (the calls wrk
# left in flight); once they are done, the same call succeeds.
SERVER_ERROR_RETRIES = 10
SERVER_ERROR_PAUSE_S = 1.0


def call(endpoint, operation, body):
    for attempt in range(SERVER_ERROR_RETRIES + 1):
        try:
            return call_once(endpoint, operation, body)
        except urllib.error.HTTPError as error:
            text = error.read()[:300]
            if error.code < 500 or attempt == SERVER_ERROR_RETRIES:
                raise SystemExit(f"{operation} at {endpoint}: HTTP {error.code}: {text!r}")
            print(f"{operation} at {endpoint}: HTTP {error.code}, again in {SERVER_ERROR_PAUSE_S} s", file=sys.stderr)
            time.sleep(SERVER_ERROR_PAUSE_S)


def call_once(endpoint, operation, body):
    request = urllib.request.Request(
        f"http://{endpoint}/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"Kinesis_20131202.{operation}",
            "X-Amz-Date": "20240101T000000Z",
            "Authorization": AUTH,
        },
    )
    with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
        text = response.read()
    return json.loads(text) if text else {}


def create(endpoint, stream, shards):
    call(endpoint, "CreateStream", {"StreamName": stream, "ShardCount": int(shards)})
    for _ in range(600):
        summary = call(endpoint, "DescribeStreamSummary", {"StreamName": stream})
        if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise SystemExit(f"stream {stream} did not become ACTIVE at {endpoint}")


def shard_ids(endpoint, stream):
    ids, token = [], None
    while True:
        body = {"NextToken": token} if token else {"StreamName": stream}
        answer = call(endpoint, "ListShards", body)
        ids += [shard["ShardId"] for shard in answer["Shards"]]
        token = answer.get("NextToken")
        if not token:
            return ids


# Calls the client left in flight are still being stored after it stopped (kinesis-mock needs
# seconds for each): the stream is read again until two reads agree.
COUNT_READS_MAX = 60
COUNT_PAUSE_S = 1.0


def count(endpoint, stream, record_bytes):
    """Every record of every shard, from the oldest, once the stream stopped growing."""
    previous = None
    for _ in range(COUNT_READS_MAX):
        total = count_once(endpoint, stream, int(record_bytes))
        if total == previous:
            print(total)
            return
        previous = total
        time.sleep(COUNT_PAUSE_S)
    raise SystemExit(f"{stream} at {endpoint} was still growing after {COUNT_READS_MAX} reads")


def count_once(endpoint, stream, record_bytes):
    """Every record of every shard, from the oldest; each must decode to record_bytes bytes."""
    total = wrong = 0
    for shard in shard_ids(endpoint, stream):
        iterator = call(endpoint, "GetShardIterator", {
            "StreamName": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON",
        })["ShardIterator"]
        while iterator:
            answer = call(endpoint, "GetRecords", {"ShardIterator": iterator, "Limit": GET_RECORDS_LIMIT})
            records = answer.get("Records", [])
            total += len(records)
            wrong += sum(1 for r in records if len(base64.b64decode(r["Data"])) != record_bytes)
            # An empty answer at the tail ends the shard: nothing is being written any more.
            if not records and not answer.get("MillisBehindLatest"):
                break
            iterator = answer.get("NextShardIterator")
    if wrong:
        raise SystemExit(f"{wrong} records of {stream} at {endpoint} are not {record_bytes} bytes long")
    return total


def delete(endpoint, stream):
    call(endpoint, "DeleteStream", {"StreamName": stream, "EnforceConsumerDeletion": True})


def parse(path):
    """run.sh's lines: `<system> <peer> <operation> <pair> RESULT key=value ... stored=N`."""
    runs = []
    for line in open(path):
        system, peer, operation, pair, _, *fields = line.split()
        values = dict(field.split("=", 1) for field in fields)
        seconds = float(values["seconds"])
        requests = int(values["requests"])
        per_request = int(values["records_per_request"])
        failed = int(values["failed"]) + int(values["timeouts"]) + int(values["socket_errors"])
        acknowledged = (requests - int(values["failed"])) * per_request
        stored = int(values["stored"])
        runs.append({
            "system": system, "peer": peer, "operation": operation, "pair": int(pair),
            "records_per_s": acknowledged / seconds,
            # As if every call the client left in flight had been done within the run.
            "stored_per_s": stored / seconds,
            "mb_per_s": acknowledged * int(values["record_bytes"]) / seconds / 1e6,
            "p50_ms": int(values["p50_us"]) / 1000,
            "p99_ms": int(values["p99_us"]) / 1000,
            "failed": failed,
            "acknowledged": acknowledged,
            "stored": stored,
            # Calls still in flight when wrk stopped may have been stored without being counted:
            # at most one per connection.
            "stored_ok": acknowledged <= stored <= acknowledged + int(values["connections"]) * per_request,
            "per_request": per_request,
            "record_bytes": int(values["record_bytes"]),
            "calls": requests,
            # The work of calls in flight when wrk stopped is lost to the measurement; at most
            # what they stored, relative to what was measured.
            "edge_bound": (stored - acknowledged) / acknowledged if acknowledged else float("inf"),
            "seconds": seconds,
            "connections": int(values["connections"]),
        })
    return runs


# Above this, the work lost with the calls in flight at the end of a run may move its rate by
# more than the noise of this shared machine between two runs of the same system.
EDGE_BOUND_MAX = 0.10

PEER_NOTES = {
    "kinesalite": "kinesalite (Node.js, LevelDB in memory)",
    "kinesis-mock": "kinesis-mock (Scala.js on Node.js, in memory)",
    "moto": "moto server (Python, in memory)",
}


def table(path, markdown_path=None):
    runs = parse(path)
    lines = [
        "| peer | load | Sluice MB/s | peer MB/s | **Sluice / peer** | paired ratios "
        "| least ratio, unfinished calls counted as done | in-flight loss bound, worst run (Sluice, peer) "
        "| p50 / p99 ms (Sluice; peer) | stored ≥ acknowledged | failed calls (Sluice, peer) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    problems = []
    keys = sorted({(r["peer"], r["operation"]) for r in runs}, key=lambda k: (list(PEER_NOTES).index(k[0]) if k[0] in PEER_NOTES else 99, k[1]))
    for peer, operation in keys:
        pairs = {}
        for run in runs:
            if run["peer"] == peer and run["operation"] == operation:
                pairs.setdefault(run["pair"], {})[run["system"]] = run
        complete = [p for p in sorted(pairs) if {"sluice", "peer"} <= pairs[p].keys()]
        sluice = [pairs[p]["sluice"] for p in complete]
        other = [pairs[p]["peer"] for p in complete]
        ratios = [s["records_per_s"] / o["records_per_s"] if o["records_per_s"] else float("inf")
                  for s, o in zip(sluice, other)]
        # The peer's rate as if its unfinished calls had been done inside the run: the least
        # the ratio can be.
        generous = [s["records_per_s"] / o["stored_per_s"] if o["stored_per_s"] else float("inf")
                    for s, o in zip(sluice, other)]
        stored_ok = all(r["stored_ok"] for r in sluice + other)
        if not stored_ok:
            problems.append(f"{peer} {operation}: stored records differ from acknowledged ones: "
                            + ", ".join(f"{r['system']} pair {r['pair']}: {r['stored']} stored, {r['acknowledged']} acknowledged"
                                        for r in sluice + other if not r["stored_ok"]))
        failed_sluice = sum(r["failed"] for r in sluice)
        failed_peer = sum(r["failed"] for r in other)
        if failed_sluice or failed_peer:
            problems.append(f"{peer} {operation}: failed calls (Sluice {failed_sluice}, peer {failed_peer}): not comparable")
        long_edge = [r for r in sluice + other if r["edge_bound"] > EDGE_BOUND_MAX]
        if long_edge:
            problems.append(f"{peer} {operation}: in {len(long_edge)} runs the calls in flight at the end stored more "
                            f"than {EDGE_BOUND_MAX:.0%} of what was measured: longer runs or fewer connections")
        median = lambda xs: statistics.median(xs) if xs else float("nan")
        load = (f"{operation}, {sluice[0]['per_request']} × {sluice[0]['record_bytes']} B, "
                f"{sluice[0]['connections']} connections, {len(complete)} pairs of "
                f"{median([r['seconds'] for r in other]):.0f} s" if sluice else operation)
        lines.append(
            f"| {PEER_NOTES.get(peer, peer)} | {load} "
            f"| {median([r['mb_per_s'] for r in sluice]):.1f} | {median([r['mb_per_s'] for r in other]):.2f} "
            f"| **{median(ratios):.1f}×** | {', '.join(f'{x:.1f}' for x in ratios)} | {median(generous):.1f}× "
            f"| {max([r['edge_bound'] for r in sluice], default=0):.0%}, {max([r['edge_bound'] for r in other], default=0):.0%} "
            f"| {median([r['p50_ms'] for r in sluice]):.0f} / {median([r['p99_ms'] for r in sluice]):.0f}; "
            f"{median([r['p50_ms'] for r in other]):.0f} / {median([r['p99_ms'] for r in other]):.0f} "
            f"| {'yes' if stored_ok else '**no**'} | {failed_sluice}, {failed_peer} |"
        )
    lines += [
        "",
        "Sluice acknowledges a record only after fdatasync of its journal (data on the same disk as the",
        "peers' would be); the Kinesis emulators keep records in memory and never fsync, so every ratio",
        "compares a durable write with a volatile one. Ratios are of acknowledged records/s; MB/s count record data (the decoded bytes) of",
        "acknowledged records; \"stored ≥ acknowledged\" means a GetRecords read of the whole stream",
        "after each run found every acknowledged record (and at most one call per connection more,",
        "those still in flight when the client stopped), each of the right length. The in-flight loss",
        "bound is what those unfinished calls stored over what was measured: the most by which the",
        "rate can understate the system; \"counting unfinished calls as done\" credits the peer with",
        "all it stored, the least the ratio can be.",
    ]
    text = "\n".join(lines)
    print(text)
    for problem in problems:
        print("PROBLEM:", problem)
    if markdown_path:
        with open(markdown_path, "w") as out:
            out.write(text + "\n")
            for problem in problems:
                out.write(f"\nPROBLEM: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    result = {"create": create, "count": count, "delete": delete, "table": table}[command](*arguments)
    sys.exit(result or 0)
