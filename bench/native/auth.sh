#!/usr/bin/env bash
# The cost of native authentication and of TLS on native ingest: the loadgen's throughput
# scenario (PutRecords over the native protocol, 1 KiB records) against three sluiced daemons
# from the same binary: open (A), with --credentials (B: the challenge-response per connection
# and a policy evaluation per call), and with --credentials and --tls-cert (C), run interleaved
# A B C A B C …, with the median of the paired ratios B/A and C/A of records/s (above 1: faster
# than open). A run with failed or throttled records stops the script: its rate would not be
# comparable.
#
# usage: bench/native/auth.sh [ROUNDS] [DURATION_S]   (defaults: 5, 8 s)
# env:   RECORD_BYTES (1024), BATCH (500 records per PutRecords), SHARDS (4), PRODUCERS (4),
#        CORES (all), SLUICED / LOADGEN (default target/release/…; build them first:
#        cargo build --release -p sluice-server --bin sluiced -p loadgen --bin sluice-loadgen),
#        OPENSSL (openssl, for the test CA)
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
source "$root/bench/lib.sh"

bench_init native-auth
write_credentials
make_test_ca
open_port=$(free_port)
auth_port=$(free_port)
tls_port=$(free_port)
start_sluiced open "$open_port" "$(free_port)"
start_sluiced auth "$auth_port" "$(free_port)" --credentials "$data/credentials.toml"
start_sluiced tls "$tls_port" "$(free_port)" --credentials "$data/credentials.toml" \
    --tls-cert "$data/cert.pem" --tls-key "$data/key.pem"

results="$data/results"
run() { # name port extra-loadgen-args...
    local name=$1 port=$2
    shift 2
    # Every run is given the keys (the open daemon answers the handshake's Hello with "not
    # required"), so the loadgen does the same work on the client side in each.
    measure_cpu "$name" quiet env AWS_ACCESS_KEY_ID=$bench_key AWS_SECRET_ACCESS_KEY=$bench_secret AWS_REGION=us-east-1 \
        "$loadgen" throughput --endpoint "127.0.0.1:$port" --shards "$shards" --producers "$producers" \
        --record-bytes "$record_bytes" --batch-records "$batch" --polling-consumers 0 --efo-consumers 0 \
        --duration-s "$duration" --json "$data/$name.json" "$@"
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
    run open "$open_port"
    run auth "$auth_port"
    run tls "$tls_port" --ca-bundle "$data/ca.pem"
done
echo "load average after: $(load_average)"
echo "records/s acknowledged (higher is better):"
paired_ratios "$results" records/s open auth tls
echo "sluiced CPU time per record, µs (lower is better):"
paired_ratios "$data/cpu" "CPU µs/record" open auth tls
