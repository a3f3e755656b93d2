#!/usr/bin/env bash
# The cost of native authentication and of TLS on native ingest: the loadgen's throughput
# scenario (PutRecords over the native protocol) against three sluiced daemons from the same
# binary: open (A), with --credentials (B: the challenge-response per connection and a policy
# evaluation per call), and with --credentials and --tls-cert (C), run interleaved A B C A B C …,
# with the median of the paired ratios B/A and C/A of records/s.
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
openssl="${OPENSSL:-openssl}"
key=AKIABENCH00000000001
secret=bench-secret

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

data="$(mktemp -d "$root/target/bench-native-auth-XXXXXX")"
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
# A test CA and a certificate for 127.0.0.1 it issued.
"$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$data/ca.key" \
    -out "$data/ca.pem" -subj /CN=sluice-bench-ca -days 1 2>/dev/null
"$openssl" req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$data/key.pem" \
    -out "$data/cert.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$data/ext"
"$openssl" x509 -req -in "$data/cert.csr" -CA "$data/ca.pem" -CAkey "$data/ca.key" -CAcreateserial \
    -out "$data/cert.pem" -days 1 -extfile "$data/ext" 2>/dev/null

start() { # name port extra-args...
    local name=$1 port=$2
    shift 2
    "$sluiced" --data-dir "$data/$name" --limits unlimited --log-level warn ${CORES:+--cores "$CORES"} \
        --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$(free_port)" --metrics-listen 127.0.0.1:0 "$@" &
    pids+=($!)
    wait_port "$port"
}
open_port=$(free_port)
auth_port=$(free_port)
tls_port=$(free_port)
start open "$open_port"
start auth "$auth_port" --credentials "$data/credentials.toml"
start tls "$tls_port" --credentials "$data/credentials.toml" --tls-cert "$data/cert.pem" --tls-key "$data/key.pem"

results="$data/results"
run() { # name port extra-loadgen-args...
    local name=$1 port=$2
    shift 2
    AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1 \
        "$loadgen" throughput --endpoint "127.0.0.1:$port" --shards "$shards" --producers "$producers" \
        --record-bytes "$record_bytes" --batch-records "$batch" --polling-consumers 0 --efo-consumers 0 \
        --duration-s "$duration" --json "$data/$name.json" "$@" >/dev/null
    python3 -c 'import json, sys; print(sys.argv[1], json.load(open(sys.argv[2]))["ingest"][0]["records_per_s"])' \
        "$name" "$data/$name.json" | tee -a "$results"
}
echo "loadgen throughput: $producers producers, $shards shards, PutRecords of $batch records of" \
    "$record_bytes bytes, ${duration}s per run; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$rounds"); do
    run open "$open_port"
    run auth "$auth_port"
    run tls "$tls_port" --ca-bundle "$data/ca.pem"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import statistics, sys
runs = {"open": [], "auth": [], "tls": []}
for line in open(sys.argv[1]):
    name, value = line.split()
    runs[name].append(float(value))
for name in runs:
    print(f"{name:5} records/s:", " ".join(f"{value:.0f}" for value in runs[name]))
for name in ("auth", "tls"):
    ratios = [b / a for a, b in zip(runs["open"], runs[name])]
    print(f"paired ratios {name}/open:", " ".join(f"{ratio:.3f}" for ratio in ratios),
          f"median {statistics.median(ratios):.3f}")
PY
