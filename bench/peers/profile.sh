#!/usr/bin/env bash
# A CPU profile of `sluiced` under load: where its cores go, as the top symbols by self time.
#
# usage: bench/peers/profile.sh native|http [SECONDS]     (default 8 s of profile)
#
#   native  bench's put-throughput: 4 connections x 8 PutRecords in flight x 500 records of 1 KiB
#           over the native protocol (the load bench/peers/iggy.sh compares with Iggy)
#   http    wrk with bench/http/put_records.lua: 8 connections, PutRecords of 500 records of
#           1 KiB over the AWS JSON API (the load bench/peers/run.sh compares with the emulators)
#
# The load runs for SECONDS + 10 s (perf itself slows the machine); perf samples sluiced's
# threads for SECONDS after the first 2 s, at PERF_FREQ Hz (999) on the cpu-clock software
# event (this VM exposes no hardware counters: `perf stat -e instructions true` says
# <not supported>), with DWARF call graphs (sluiced is built without frame pointers; the
# release profile keeps line tables). It also prints how many cores sluiced, the load client
# and everything else kept busy meanwhile.
#
# env: OUT (a directory for perf-<mode>.data and profile-<mode>.txt; default: a temporary one),
#      SLUICED, PUT_THROUGHPUT (binaries instead of building them), PERF_FREQ, CONNECTIONS (8,
#      http), RECORDS (500, http)
# Installs linux-perf and wrk (apt) if missing. Runs in a network namespace of its own, like
# the other scripts here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:?usage: $0 native|http [SECONDS]}"
seconds="${2:-8}"
freq="${PERF_FREQ:-999}"
case "$mode" in native | http) ;; *) echo "usage: $0 native|http [SECONDS]" >&2; exit 2 ;; esac

if [ -z "${SLUICE_PEERS_NETNS:-}" ]; then
    command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
    if [ -z "${SLUICED:-}" ] || [ -z "${PUT_THROUGHPUT:-}" ]; then
        (cd "$root" && cargo build --release -q -p sluice-server --bin sluiced -p bench --bin put-throughput)
    fi
    exec unshare --net -- env SLUICE_PEERS_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' \
        "${BASH_SOURCE[0]}" "$@"
fi
sluiced="${SLUICED:-$root/target/release/sluiced}"
put_throughput="${PUT_THROUGHPUT:-$root/target/release/put-throughput}"
out="${OUT:-$(mktemp -d /tmp/bench-profile-XXXXXX)}"
mkdir -p "$out"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

data="$(mktemp -d /tmp/bench-profile-data-XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

native_port=$(free_port)
http_port=$(free_port)
"$sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn --listen "127.0.0.1:$native_port" \
    --http-listen "127.0.0.1:$http_port" --metrics-listen 127.0.0.1:0 >"$out/sluiced-$mode.log" 2>&1 &
sluiced_pid=$!
pids+=("$sluiced_pid")
wait_port "$native_port" && wait_port "$http_port"

load_seconds=$((seconds + 10))
if [ "$mode" = native ]; then
    "$put_throughput" --endpoint "127.0.0.1:$native_port" --connections 4 --in-flight 8 --records-per-call 500 \
        --record-bytes 1024 --duration-s "$load_seconds" >"$out/load-$mode.txt" 2>&1 &
else
    python3 "$here/kinesis.py" create "127.0.0.1:$http_port" profile 4
    STREAM=profile RECORDS="${RECORDS:-500}" RECORD_BYTES=1024 wrk -t 2 -c "${CONNECTIONS:-8}" -d "$load_seconds" \
        --timeout 60s --latency -s "$root/bench/http/put_records.lua" "http://127.0.0.1:$http_port" >"$out/load-$mode.txt" 2>&1 &
fi
load_pid=$!
pids+=("$load_pid")
# CPU seconds a process (all its threads) has used, and the machine's busy seconds, in ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
sleep 2
before=("$(cpu_ticks "$sluiced_pid")" "$(cpu_ticks "$load_pid")" "$(busy_ticks)" "$(date +%s.%N)")
perf record -e cpu-clock -F "$freq" --call-graph dwarf,16384 -p "$sluiced_pid" -o "$out/perf-$mode.data" \
    -- sleep "$seconds" 2>"$out/perf-record-$mode.log"
after=("$(cpu_ticks "$sluiced_pid")" "$(cpu_ticks "$load_pid")" "$(busy_ticks)" "$(date +%s.%N)")
wait "$load_pid"
cpu_line=$(python3 -c '
import os, sys
b, a = [float(x) for x in sys.argv[1:5]], [float(x) for x in sys.argv[5:9]]
hz, wall = os.sysconf("SC_CLK_TCK"), a[3] - b[3]
s, l, m = ((a[i] - b[i]) / hz / wall for i in range(3))
print(f"cores busy during the profile ({wall:.1f} s): sluiced {s:.2f}, load client {l:.2f}, "
      f"everything else (perf, other builds) {max(m - s - l, 0):.2f}, of {os.cpu_count()}")
' "${before[@]}" "${after[@]}")

{
    echo "# sluiced under the $mode load; $seconds s of cpu-clock samples at $freq Hz"
    echo "# load: $(grep -E '^PutRecords:|^RESULT' "$out/load-$mode.txt" || true)"
    echo "# $cpu_line"
    echo
    echo "## top symbols by self time"
    perf report -i "$out/perf-$mode.data" --no-children --sort symbol --stdio -g none --percent-limit 0.5 2>/dev/null |
        grep -v "^#" | grep -v "^$" | sed -E "s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//" | head -40
    echo
    echo "## by kind of work (bench/peers/categories.py)"
    perf report -i "$out/perf-$mode.data" --no-children --sort symbol --stdio -g none --percent-limit 0 2>/dev/null |
        python3 "$here/categories.py"
    echo
    echo "## the same, with the Sluice code that called each (bench/peers/callers.py)"
    perf script --no-inline -i "$out/perf-$mode.data" -F comm,tid,period,ip,sym,dso 2>/dev/null |
        python3 "$here/callers.py" 10
    echo
    echo "## by shared object"
    perf report -i "$out/perf-$mode.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -10
    echo
    echo "## by thread"
    perf report -i "$out/perf-$mode.data" --no-children --sort comm --stdio -g none 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -10
} >"$out/profile-$mode.txt"
cat "$out/profile-$mode.txt"
echo "perf data: $out/perf-$mode.data (perf report -i … --no-children for call graphs)"
