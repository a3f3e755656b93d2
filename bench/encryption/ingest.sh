#!/usr/bin/env bash
# The cost of encryption at rest on durable ingest: the loadgen's throughput scenario
# (PutRecords over the native protocol, acknowledged after fdatasync) against two sluiced
# daemons from the same binary, plain (A) and encrypting (B), run interleaved A B A B …, with the
# median of the paired ratios B/A of records/s.
#
# The loadgen creates a fresh stream per run and has no StartStreamEncryption (the native
# protocol does not carry it yet), so for B a watcher calls StartStreamEncryption over HTTP
# (boto3) on each new loadgen stream as soon as it is listed: within ~20 ms, well inside the
# loadgen's 2 s warm-up, so the measured window is all sealed records.
#
# usage: bench/encryption/ingest.sh [ROUNDS] [DURATION_S]   (defaults: 5, 8 s)
# env:   RECORD_BYTES (1024), BATCH (500), SHARDS (4), PRODUCERS (4), CORES (all),
#        SLUICED / LOADGEN (default target/release/…; build them first:
#        cargo build --release -p sluice-server --bin sluiced -p loadgen --bin sluice-loadgen),
#        PYTHON (.venv/bin/python, with boto3: tests/aws/setup.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-5}"
duration="${2:-8}"
record_bytes="${RECORD_BYTES:-1024}"
batch="${BATCH:-500}"
shards="${SHARDS:-4}"
producers="${PRODUCERS:-4}"
sluiced="${SLUICED:-$root/target/release/sluiced}"
loadgen="${LOADGEN:-$root/target/release/sluice-loadgen}"
python="${PYTHON:-$root/.venv/bin/python}"

source "$root/bench/lib.sh"

bench_init encryption
plain_port=$(free_port)
sealed_port=$(free_port)
sealed_http=$(free_port)
start_sluiced plain "$plain_port" "$(free_port)"
start_sluiced sealed "$sealed_port" "$sealed_http"

# The watcher: StartStreamEncryption (alias/aws/kinesis) on every new stream of the B daemon.
AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x "$python" - "$sealed_http" <<'PY' &
import sys, time, boto3
from botocore.config import Config
c = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                 config=Config(retries={"total_max_attempts": 1}))
done = set()
while True:
    for name in c.list_streams()["StreamNames"]:
        if name not in done:
            try:
                c.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
                done.add(name)
            except Exception:
                pass
    time.sleep(0.02)
PY
pids+=($!)

results="$data/results"
run() { # name port
    local name=$1 port=$2
    measure_cpu "$name" quiet "$loadgen" throughput --endpoint "127.0.0.1:$port" --shards "$shards" \
        --producers "$producers" --record-bytes "$record_bytes" --batch-records "$batch" --polling-consumers 0 \
        --efo-consumers 0 --duration-s "$duration" --json "$data/$name.json"
    python3 - "$name" "$data/$name.json" <<'PY' | tee -a "$results"
import json, sys
ingest = json.load(open(sys.argv[2]))["ingest"][0]
if ingest["failed_records"] or ingest["throttled_records"]:
    sys.exit(f"{sys.argv[1]}: {ingest['failed_records']} failed, {ingest['throttled_records']} throttled records")
print(sys.argv[1], ingest["records_per_s"])
PY
}
echo "loadgen throughput: $producers producers, $shards shards, PutRecords of $batch records of" \
    "$record_bytes bytes, ${duration}s per run; $(nproc) cores; load average $(load_average)"
for _ in $(seq "$rounds"); do
    run plain "$plain_port"
    run sealed "$sealed_port"
done
echo "load average after: $(load_average)"
# Every stream of B must be encrypted by now.
AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x "$python" - "$sealed_http" <<'PY'
import sys, boto3
c = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
for name in c.list_streams()["StreamNames"]:
    kind = c.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["EncryptionType"]
    assert kind == "KMS", f"{name} is {kind}: the watcher missed it"
PY
echo "records/s acknowledged (higher is better):"
paired_ratios "$results" records/s plain sealed
echo "sluiced CPU time per record, µs (lower is better):"
paired_ratios "$data/cpu" "CPU µs/record" plain sealed
