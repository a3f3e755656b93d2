#!/usr/bin/env bash
# Throughput of the AWS HTTP API: PutRecord and PutRecords against `sluiced --limits unlimited`
# and, in the same run with the same client and load, against kinesalite (the Node.js Kinesis
# emulator). The client is wrk with the Lua scripts beside this file. Each run also counts the
# CPU the server and the client used per request: they share the machine's cores, so the
# client's own cost caps the requests per second any server could reach here (printed last).
# A third server answers PutRecord without doing anything (nginx's `return 200` of a canned
# answer): what a server that costs as little as nginx and stores nothing reaches with this
# client on this machine, the ceiling of the PutRecord ratio here. And Sluice answers
# DescribeStreamSummary, which touches no disk: what its HTTP stack costs per request.
#
# usage: bench/http/run.sh [DURATION_S] [CONNECTIONS]      (defaults: 10 s, 32 connections)
# env:   RECORD_BYTES (1024), RECORDS per PutRecords (100), SHARDS (4), CORES (all),
#        SLUICED (a sluiced binary to use instead of building target/release/sluiced)
#
# Installs wrk, nginx and GNU time (apt) and kinesalite (npm, into bench/http/node_modules) if
# missing, and builds sluiced in release mode. sluiced acknowledges a record after fdatasync on
# its data directory (under target/, on the repository's filesystem); kinesalite keeps records
# in memory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-10}"
connections="${2:-32}"
export RECORD_BYTES="${RECORD_BYTES:-1024}" RECORDS="${RECORDS:-100}"
shards="${SHARDS:-4}"
threads=2

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x /usr/sbin/nginx ] || { apt-get update -qq && apt-get install -y -qq nginx; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
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
sluice_pid=$!
kinesalite_port=$(free_port)
"$here/node_modules/.bin/kinesalite" --port "$kinesalite_port" --createStreamMs 0 --deleteStreamMs 0 \
    --updateStreamMs 0 --shardLimit 1000 >/dev/null &
pids+=($!)
kinesalite_pid=$!
noop_port=$(free_port)
mkdir -p "$data/nginx"
# As many workers as cores; the answer is a PutRecord answer's shape and size.
cat >"$data/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
pid $data/nginx/nginx.pid;
error_log $data/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $data/nginx;
    client_body_buffer_size 64k;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$noop_port;
        location / {
            default_type application/x-amz-json-1.1;
            return 200 '{"SequenceNumber":"49650000000000000000000000000000000000000000000000000002","ShardId":"shardId-000000000000"}';
        }
    }
}
EOF
/usr/sbin/nginx -c "$data/nginx/nginx.conf" -e "$data/nginx/error.log" &
pids+=($!)
noop_pid=$!
wait_port "$sluice_port" && wait_port "$kinesalite_port" && wait_port "$noop_port"
sluice="http://127.0.0.1:$sluice_port"
kinesalite="http://127.0.0.1:$kinesalite_port"
create_stream "$sluice"
create_stream "$kinesalite"

results="$data/results"
# CPU seconds (user + system, all threads) a process and its children (nginx's workers) have
# used so far.
cpu_seconds() {
    local pid total=0
    for pid in $1 $(pgrep -P "$1" || true); do
        total=$(awk -v hz="$(getconf CLK_TCK)" -v sum="$total" '{ printf "%.3f", sum + ($14 + $15) / hz }' "/proc/$pid/stat")
    done
    echo "$total"
}
run() { # name endpoint script server-pid
    local line before after
    # A short warm-up, then the measured run, with the CPU the server and the client used.
    wrk -t "$threads" -c "$connections" -d 2 -s "$here/$3" "$2" >/dev/null
    before=$(cpu_seconds "$4")
    line=$(/usr/bin/time -f "%U %S" -o "$data/wrk-cpu" \
        wrk -t "$threads" -c "$connections" -d "$duration" --latency -s "$here/$3" "$2" | grep '^RESULT')
    after=$(cpu_seconds "$4")
    echo "$1 $line server_cpu_s=$(awk "BEGIN { print $after - $before }") client_cpu_s=$(awk '{ print $1 + $2 }' "$data/wrk-cpu")" |
        tee -a "$results"
}
echo "wrk: $threads threads, $connections connections, ${duration}s per run; $RECORD_BYTES-byte records;" \
    "PutRecords of $RECORDS records; $shards shards; $(nproc) cores"
run sluice-PutRecord "$sluice" put_record.lua "$sluice_pid"
run kinesalite-PutRecord "$kinesalite" put_record.lua "$kinesalite_pid"
run noop-PutRecord "http://127.0.0.1:$noop_port" put_record.lua "$noop_pid"
run sluice-DescribeStreamSummary "$sluice" describe.lua "$sluice_pid"
run sluice-PutRecords "$sluice" put_records.lua "$sluice_pid"
run kinesalite-PutRecords "$kinesalite" put_records.lua "$kinesalite_pid"

python3 - "$results" <<'PY'
import os
import sys
rows = {}
for line in open(sys.argv[1]):
    name, _, *fields = line.split()
    values = dict(field.split("=") for field in fields)
    seconds = float(values["seconds"])
    requests = int(values["requests"])
    records = requests * max(int(values["records_per_request"]), 1)
    rows[name] = {
        "req/s": requests / seconds,
        "records/s": records / seconds,
        "MB/s": records * int(values["record_bytes"]) / seconds / 1e6,
        "p50 ms": int(values["p50_us"]) / 1000,
        "p99 ms": int(values["p99_us"]) / 1000,
        "failed": int(values["failed"]) + int(values.get("timeouts", 0)) + int(values.get("socket_errors", 0)),
        "server us/req": float(values["server_cpu_s"]) / requests * 1e6,
        "client us/req": float(values["client_cpu_s"]) / requests * 1e6,
    }
print()
print(f"{'run':24} {'req/s':>10} {'records/s':>11} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}"
      f" {'server CPU us/req':>18} {'client CPU us/req':>18}")
for name, row in rows.items():
    print(f"{name:24} {row['req/s']:10.0f} {row['records/s']:11.0f} {row['MB/s']:8.1f} "
          f"{row['p50 ms']:8.2f} {row['p99 ms']:8.2f} {row['failed']:7d}"
          f" {row['server us/req']:18.1f} {row['client us/req']:18.1f}")
cores = os.cpu_count()
for op in ("PutRecord", "PutRecords"):
    s, k = rows[f"sluice-{op}"], rows[f"kinesalite-{op}"]
    print(f"{op}: sluice / kinesalite = {s['req/s'] / k['req/s']:.1f}x requests/s, {s['MB/s'] / k['MB/s']:.1f}x MB/s")
    # Client and server share this machine's cores: at the client's own CPU per request, the
    # cores could carry at most this many requests per second even with a server that cost
    # nothing, so no server reaches a higher ratio here.
    ceiling = cores * 1e6 / s["client us/req"]
    print(f"  the client alone ({s['client us/req']:.1f} us of CPU per request) caps this machine's {cores} cores at "
          f"{ceiling:.0f} req/s = {ceiling / k['req/s']:.1f}x kinesalite")
    both = s["client us/req"] + s["server us/req"]
    print(f"  client and sluiced together ({both:.1f} us per request) cap them at {cores * 1e6 / both:.0f} req/s = "
          f"{cores * 1e6 / both / k['req/s']:.1f}x kinesalite; 20x would leave sluiced "
          f"{cores * 1e6 / (20 * k['req/s']) - s['client us/req']:.1f} us per request with this client")
noop, k = rows["noop-PutRecord"], rows["kinesalite-PutRecord"]
print(f"PutRecord: a server that does nothing (nginx, {noop['server us/req']:.1f} us of CPU per request) reaches "
      f"{noop['req/s']:.0f} req/s = {noop['req/s'] / k['req/s']:.1f}x kinesalite with this client on this machine")
d = rows["sluice-DescribeStreamSummary"]
print(f"DescribeStreamSummary (no disk): sluiced {d['server us/req']:.1f} us of CPU per request, "
      f"{d['req/s']:.0f} req/s = {d['req/s'] / k['req/s']:.1f}x kinesalite's PutRecord")
bad = [name for name, row in rows.items() if row["failed"]]
if bad:
    print("runs with failed requests (results not comparable):", ", ".join(bad))
PY
