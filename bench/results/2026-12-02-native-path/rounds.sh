#!/usr/bin/env bash
# Issue 19, native PutRecords path: Apache Iggy with fsync and Sluice variants, interleaved in
# rounds (Iggy, then each Sluice variant in order), with the loads and result lines of
# bench/peers/iggy.sh (whose run_iggy / iggy_result / run_sluice this repeats, parameterised by
# the sluiced binary and an optional LD_PRELOAD).
#
# usage: rounds.sh OUT IGGY_SERVER IGGY_BENCH PUT_THROUGHPUT NAME=SLUICED[:PRELOAD] ...
# env: ROUNDS (5), DURATION_S (10), IGGY_TOTAL_DATA (4GB)
set -euo pipefail
if [ -z "${SLUICE_PEERS_NETNS:-}" ]; then
    exec unshare --net -- env SLUICE_PEERS_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "${BASH_SOURCE[0]}" "$@"
fi
out=$1; iggy_server=$2; iggy_bench=$3; put_throughput=$4; shift 4
variants=("$@")
rounds=${ROUNDS:-5}; duration=${DURATION_S:-10}; total_data=${IGGY_TOTAL_DATA:-4GB}
mkdir -p "$out/logs"; results="$out/rounds.txt"
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
load() { cut -d' ' -f1 /proc/loadavg; }
server_pid=""; data=""
stop_server() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi
    if [ -n "$data" ]; then rm -rf "$data"; data=""; fi
}
trap stop_server EXIT

run_iggy() { # round
    local port log
    data="$(mktemp -d /tmp/perf5-iggy-XXXXXX)"; port=$(free_port)
    (cd "$data" && exec env IGGY_SYSTEM_PATH="$data/local_data" IGGY_TCP_ADDRESS="127.0.0.1:$port" \
        IGGY_HTTP_ENABLED=false IGGY_QUIC_ENABLED=false IGGY_WEBSOCKET_ENABLED=false IGGY_SYSTEM_LOGGING_LEVEL=warn \
        "$iggy_server" --fresh --with-default-root-credentials >"$out/logs/iggy-server-$1.log" 2>&1) &
    server_pid=$!
    wait_port "$port" || { echo "iggy-server did not listen" >&2; exit 2; }
    log="$out/logs/iggy-bench-$1.log"
    local start_load; start_load=$(load)
    "$iggy_bench" --message-size 1024 --messages-per-batch 500 --total-data "$total_data" --enforce-fsync \
        pinned-producer --producers 4 tcp --server-address "127.0.0.1:$port" >"$log" 2>&1
    grep -q "enforce fsync: true" "$log" || { echo "$log does not show enforce fsync" >&2; exit 2; }
    local result
    result=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | python3 -c '
import re, sys
text = sys.stdin.read()
messages = re.search(r"Benchmark: .*?, (\d+) messages, \d+ messages per batch, .*?, (\d+) bytes per message", text)
seconds = [float(s) for s in re.findall(r"Producer #\d+ → sent .*? in ([0-9.]+) s, total size", text)]
data_bytes = int(messages.group(1)) * int(messages.group(2))
print(f"mb_per_s={data_bytes / max(seconds) / 1e6:.2f} seconds={max(seconds):.2f}")
')
    echo "iggy-fsync $1 $(date -u +%H:%M:%S) load=$start_load $result server_cpu_s=$(cpu_s "$server_pid")" | tee -a "$results"
    stop_server
}

run_sluice() { # name round sluiced preload
    local port log line start_load
    data="$(mktemp -d /tmp/perf5-sluice-XXXXXX)"; port=$(free_port)
    env ${4:+LD_PRELOAD=$4} "$3" --data-dir "$data/sluice" --limits unlimited --log-level warn --listen "127.0.0.1:$port" \
        --http-listen "127.0.0.1:$(free_port)" --metrics-listen 127.0.0.1:0 >"$out/logs/sluiced-$1-$2.log" 2>&1 &
    server_pid=$!
    wait_port "$port" || { echo "sluiced did not listen" >&2; exit 2; }
    log="$out/logs/put-throughput-$1-$2.log"; start_load=$(load)
    "$put_throughput" --endpoint "127.0.0.1:$port" --connections 4 --in-flight 8 --records-per-call 500 \
        --record-bytes 1024 --duration-s "$duration" >"$log" 2>&1
    line=$(grep '^PutRecords:' "$log") || { echo "no result in $log" >&2; exit 2; }
    echo "$1 $2 $(date -u +%H:%M:%S) load=$start_load "`
        `"mb_per_s=$(echo "$line" | sed -E 's/.* ([0-9.]+) records\/s.*/\1/' | awk '{printf "%.2f", $1 * 1024 / 1e6}') "`
        `"failed_records=$(echo "$line" | sed -E 's/.* ([0-9]+) failed records.*/\1/') "`
        `"seconds=$(echo "$line" | sed -E 's/.*, ([0-9.]+) s$/\1/') server_cpu_s=$(cpu_s "$server_pid")" | tee -a "$results"
    stop_server
}

for round in $(seq "$rounds"); do
    run_iggy "$round"
    for variant in "${variants[@]}"; do
        name=${variant%%=*}; spec=${variant#*=}; bin=${spec%%:*}; preload=""
        [ "$spec" != "$bin" ] && preload=${spec#*:}
        run_sluice "$name" "$round" "$bin" "$preload"
    done
done
