#!/usr/bin/env bash
# The cost of SigV4 verification on ingest: PutRecords over HTTP against two sluiced daemons
# built from the same binary, one open (A) and one with --credentials (B), run interleaved
# A B A B … with the same signed requests (wrk, bench/http/put_records_signed.lua), and the
# median of the paired B/A ratios of records/s.
#
# usage: bench/http/auth.sh [PAIRS] [DURATION_S] [CONNECTIONS]   (defaults: 5, 10 s, 16)
# env:   RECORD_BYTES (1024), RECORDS per PutRecords (100), SHARDS (4), CORES (all),
#        SLUICED (default target/release/sluiced; build it first), PYTHON (default .venv/bin/python,
#        tests/aws/setup.sh installs botocore there)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pairs="${1:-5}"
duration="${2:-10}"
connections="${3:-16}"
export RECORD_BYTES="${RECORD_BYTES:-1024}" RECORDS="${RECORDS:-100}"
shards="${SHARDS:-4}"
sluiced="${SLUICED:-$root/target/release/sluiced}"
python="${PYTHON:-$root/.venv/bin/python}"
key=AKIABENCH00000000001
secret=bench-secret

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

data="$(mktemp -d "$root/target/bench-auth-XXXXXX")"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
cat >"$data/credentials.toml" <<TOML
[[principal]]
name = "bench"
access_key_id = "$key"
secret_access_key = "$secret"
policies = ['''{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}}''']
TOML

start() { # name port extra-args...
    local name=$1 port=$2
    shift 2
    "$sluiced" --data-dir "$data/$name" --limits unlimited --log-level warn ${CORES:+--cores "$CORES"} \
        --listen "127.0.0.1:$(free_port)" --http-listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 "$@" &
    pids+=($!)
    wait_port "$port"
}
open_port=$(free_port)
signed_port=$(free_port)
start open "$open_port"
start signed "$signed_port" --credentials "$data/credentials.toml"
for port in "$open_port" "$signed_port"; do
    "$python" - "http://127.0.0.1:$port" "$key" "$secret" "$shards" <<'PY'
import sys, time, boto3
endpoint, key, secret, shards = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=key, aws_secret_access_key=secret)
kinesis.create_stream(StreamName="bench", ShardCount=shards)
kinesis.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
PY
done

results="$data/results"
run() { # name port
    # Fresh signatures each run: they are valid for 5 minutes.
    "$python" "$here/sign.py" "http://127.0.0.1:$2" bench "$key" "$secret" 32 "$RECORDS" "$RECORD_BYTES" >"$data/signed-$1"
    SIGNED="$data/signed-$1" wrk -t 2 -c "$connections" -d 2 -s "$here/put_records_signed.lua" "http://127.0.0.1:$2" >/dev/null
    local line
    line=$(SIGNED="$data/signed-$1" wrk -t 2 -c "$connections" -d "$duration" --latency \
        -s "$here/put_records_signed.lua" "http://127.0.0.1:$2" | grep '^RESULT')
    echo "$1 $line" | tee -a "$results"
}
echo "wrk: 2 threads, $connections connections, ${duration}s per run; PutRecords of $RECORDS records of" \
    "$RECORD_BYTES bytes; $shards shards; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$pairs"); do
    run open "$open_port"
    run signed "$signed_port"
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {"open": [], "signed": []}
for line in open(sys.argv[1]):
    name, _, *fields = line.split()
    values = dict(field.split("=") for field in fields)
    if int(values["failed"]):
        sys.exit(f"a {name} run had {values['failed']} failed requests: not comparable")
    runs[name].append(int(values["requests"]) * int(values["records_per_request"]) / float(values["seconds"]))
ratios = [signed / open_ for open_, signed in zip(runs["open"], runs["signed"])]
print("open records/s:  ", " ".join(f"{value:.0f}" for value in runs["open"]))
print("signed records/s:", " ".join(f"{value:.0f}" for value in runs["signed"]))
print("paired ratios signed/open:", " ".join(f"{ratio:.3f}" for ratio in ratios))
print(f"median ratio: {statistics.median(ratios):.3f}")
PY
