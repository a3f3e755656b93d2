#!/usr/bin/env bash
# Throughput of the AWS HTTP API: PutRecord and PutRecords against `sluiced --limits unlimited`
# and, in the same run with the same client and load, against kinesalite (the Node.js Kinesis
# emulator). The client is wrk with the Lua scripts beside this file.
#
# usage: bench/http/run.sh [DURATION_S] [CONNECTIONS]      (defaults: 10 s, 32 connections)
# env:   RECORD_BYTES (1024), RECORDS per PutRecords (100), SHARDS (4), CORES (all),
#        SLUICED (a sluiced binary to use instead of building target/release/sluiced)
#
# Installs wrk (apt) and kinesalite (npm, into bench/http/node_modules) if missing, and builds
# sluiced in release mode. sluiced acknowledges a record after fdatasync on its data directory
# (under target/, on the repository's filesystem); kinesalite keeps records in memory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-10}"
connections="${2:-32}"
export RECORD_BYTES="${RECORD_BYTES:-1024}" RECORDS="${RECORDS:-100}"
shards="${SHARDS:-4}"
threads=2

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ ! -x "$here/node_modules/.bin/kinesalite" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -z "${SLUICED:-}" ]; then
    (cd "$root" && cargo build --release -q -p sluice-server --bin sluiced)
fi
sluiced="${SLUICED:-$root/target/release/sluiced}"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# kinesalite insists on a SigV4-shaped Authorization header (it does not check the signature);
# Sluice accepts it too. The wrk scripts send the same.
auth='AWS4-HMAC-SHA256 Credential=sluice/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000'
call() { # endpoint operation json
    curl -s -X POST "$1/" -H "X-Amz-Target: Kinesis_20131202.$2" -H 'Content-Type: application/x-amz-json-1.1' \
        -H "Authorization: $auth" -H "X-Amz-Date: 20240101T000000Z" -d "$3"
}
create_stream() { # endpoint
    call "$1" CreateStream "{\"StreamName\":\"bench\",\"ShardCount\":$shards}" >/dev/null
    for _ in $(seq 200); do
        call "$1" DescribeStreamSummary '{"StreamName":"bench"}' | grep -q '"StreamStatus":"ACTIVE"' && return 0
        sleep 0.05
    done
    echo "stream bench did not become ACTIVE at $1" >&2
    return 1
}

data="$(mktemp -d "$root/target/bench-http-XXXXXX")"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

sluice_port=$(free_port)
"$sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn \
    ${CORES:+--cores "$CORES"} --listen "127.0.0.1:$(free_port)" --http-listen "127.0.0.1:$sluice_port" --metrics-listen 127.0.0.1:0 &
pids+=($!)
kinesalite_port=$(free_port)
"$here/node_modules/.bin/kinesalite" --port "$kinesalite_port" --createStreamMs 0 --deleteStreamMs 0 \
    --updateStreamMs 0 --shardLimit 1000 >/dev/null &
pids+=($!)
wait_port "$sluice_port" && wait_port "$kinesalite_port"
sluice="http://127.0.0.1:$sluice_port"
kinesalite="http://127.0.0.1:$kinesalite_port"
create_stream "$sluice"
create_stream "$kinesalite"

results="$data/results"
run() { # name endpoint script
    local line
    # A short warm-up, then the measured run.
    wrk -t "$threads" -c "$connections" -d 2 -s "$here/$3" "$2" >/dev/null
    line=$(wrk -t "$threads" -c "$connections" -d "$duration" --latency -s "$here/$3" "$2" | grep '^RESULT')
    echo "$1 $line" | tee -a "$results"
}
echo "wrk: $threads threads, $connections connections, ${duration}s per run; $RECORD_BYTES-byte records;" \
    "PutRecords of $RECORDS records; $shards shards; $(nproc) cores"
run sluice-PutRecord "$sluice" put_record.lua
run kinesalite-PutRecord "$kinesalite" put_record.lua
run sluice-PutRecords "$sluice" put_records.lua
run kinesalite-PutRecords "$kinesalite" put_records.lua

python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, _, *fields = line.split()
    values = dict(field.split("=") for field in fields)
    seconds = float(values["seconds"])
    requests = int(values["requests"])
    records = requests * int(values["records_per_request"])
    rows[name] = {
        "req/s": requests / seconds,
        "records/s": records / seconds,
        "MB/s": records * int(values["record_bytes"]) / seconds / 1e6,
        "p50 ms": int(values["p50_us"]) / 1000,
        "p99 ms": int(values["p99_us"]) / 1000,
        "failed": int(values["failed"]) + int(values.get("timeouts", 0)) + int(values.get("socket_errors", 0)),
    }
print()
print(f"{'run':24} {'req/s':>10} {'records/s':>11} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
for name, row in rows.items():
    print(f"{name:24} {row['req/s']:10.0f} {row['records/s']:11.0f} {row['MB/s']:8.1f} "
          f"{row['p50 ms']:8.2f} {row['p99 ms']:8.2f} {row['failed']:7d}")
for op in ("PutRecord", "PutRecords"):
    s, k = rows[f"sluice-{op}"], rows[f"kinesalite-{op}"]
    print(f"{op}: sluice / kinesalite = {s['req/s'] / k['req/s']:.1f}x requests/s, {s['MB/s'] / k['MB/s']:.1f}x MB/s")
bad = [name for name, row in rows.items() if row["failed"]]
if bad:
    print("runs with failed requests (results not comparable):", ", ".join(bad))
PY
