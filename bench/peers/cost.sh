#!/usr/bin/env bash
# What a GB of ingest costs in CPU: sluiced's and the client's CPU seconds per GB of record data,
# over the native protocol or the AWS JSON API, without perf.
#
# usage: bench/peers/cost.sh native|http [SECONDS] [RUNS]     (defaults: 10 s, 3 runs)
#
#   native  bench's put-throughput: 4 connections x 8 PutRecords in flight x 500 records of 1 KiB
#   http    wrk with bench/http/put_records.lua: 8 connections, PutRecords of 500 x 1 KiB
#
# On a machine shared with builds, MB/s say how much CPU the neighbours left; CPU seconds per GB
# say what the work costs, and 2 cores / (sluiced's + the client's CPU s per GB) is the
# ceiling on this machine with nothing else running. One line per run, with the cores each
# side and everything else kept busy.
#
# env: SLUICED, PUT_THROUGHPUT (binaries instead of building them). Runs in a network namespace
# of its own, like the other scripts here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:?usage: $0 native|http [SECONDS] [RUNS]}"
seconds="${2:-10}"
runs="${3:-3}"
case "$mode" in native | http) ;; *) echo "usage: $0 native|http [SECONDS] [RUNS]" >&2; exit 2 ;; esac

if [ -z "${SLUICE_PEERS_NETNS:-}" ]; then
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
    if [ -z "${SLUICED:-}" ] || [ -z "${PUT_THROUGHPUT:-}" ]; then
        (cd "$root" && cargo build --release -q -p sluice-server --bin sluiced -p bench --bin put-throughput)
    fi
    exec unshare --net -- env SLUICE_PEERS_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' \
        "${BASH_SOURCE[0]}" "$@"
fi
sluiced="${SLUICED:-$root/target/release/sluiced}"
put_throughput="${PUT_THROUGHPUT:-$root/target/release/put-throughput}"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
TIMEFORMAT='%U %S'

data=""
sluiced_pid=""
cleanup() {
    if [ -n "$sluiced_pid" ]; then kill "$sluiced_pid" 2>/dev/null || true; wait "$sluiced_pid" 2>/dev/null || true; fi
    if [ -n "$data" ]; then rm -rf "$data"; fi
    sluiced_pid=""
    data=""
}
trap cleanup EXIT

for run in $(seq "$runs"); do
    data="$(mktemp -d /tmp/bench-cost-XXXXXX)"
    native_port=$(free_port)
    http_port=$(free_port)
    "$sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn --listen "127.0.0.1:$native_port" \
        --http-listen "127.0.0.1:$http_port" --metrics-listen 127.0.0.1:0 >"$data/sluiced.log" 2>&1 &
    sluiced_pid=$!
    wait_port "$native_port" && wait_port "$http_port"
    [ "$mode" = http ] && python3 "$here/kinesis.py" create "127.0.0.1:$http_port" cost 4
    before=("$(cpu_ticks "$sluiced_pid")" "$(busy_ticks)" "$(date +%s.%N)")
    if [ "$mode" = native ]; then
        { time "$put_throughput" --endpoint "127.0.0.1:$native_port" --connections 4 --in-flight 8 \
            --records-per-call 500 --record-bytes 1024 --duration-s "$seconds" >"$data/load" 2>&1; } 2>"$data/client-cpu"
        # Record data only: records/s x seconds x 1,024 B.
        bytes=$(sed -E 's/.* ([0-9.]+) records\/s.* ([0-9.]+) s$/\1 \2/' "$data/load" | awk '{printf "%.0f", $1 * $2 * 1024}')
    else
        { time env STREAM=cost RECORDS=500 RECORD_BYTES=1024 wrk -t 2 -c 8 -d "$seconds" --timeout 60s \
            -s "$root/bench/http/put_records.lua" "http://127.0.0.1:$http_port" >"$data/load" 2>&1; } 2>"$data/client-cpu"
        bytes=$(grep '^RESULT' "$data/load" | sed -E 's/.*requests=([0-9]+).*failed=([0-9]+).*/\1 \2/' |
            awk '{printf "%.0f", ($1 - $2) * 500 * 1024}')
    fi
    after=("$(cpu_ticks "$sluiced_pid")" "$(busy_ticks)" "$(date +%s.%N)")
    read -r client_user client_system <"$data/client-cpu"
    python3 - "$mode" "$run" "$bytes" "${before[@]}" "${after[@]}" "$client_user" "$client_system" <<'PY'
import os, sys
mode, run = sys.argv[1], sys.argv[2]
gb = float(sys.argv[3]) / 1e9
s0, b0, w0, s1, b1, w1, client_user, client_system = map(float, sys.argv[4:12])
hz, wall = os.sysconf("SC_CLK_TCK"), w1 - w0
server, client, busy = (s1 - s0) / hz, client_user + client_system, (b1 - b0) / hz
print(f"{mode} run {run}: {gb * 1e3 / wall:.1f} MB/s; sluiced {server / gb:.2f} CPU s/GB ({server / wall:.2f} cores), "
      f"client {client / gb:.2f} CPU s/GB ({client / wall:.2f} cores), everything else {max(busy - server - client, 0) / wall:.2f} cores "
      f"of {os.cpu_count()}; ceiling with both cores free: {os.cpu_count() / (server / gb + client / gb) * 1e3:.0f} MB/s")
PY
    cleanup
done
