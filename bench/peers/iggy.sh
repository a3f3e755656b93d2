#!/usr/bin/env bash
# Durable ingest: Sluice's native protocol against Apache Iggy, interleaved in one run.
#
# usage: bench/peers/iggy.sh IGGY_SERVER IGGY_BENCH
#
# IGGY_SERVER and IGGY_BENCH are the paths of an `iggy-server` and an `iggy-bench` built from
# Iggy's public source outside this repository (docs/benchmarks.md says how). This script does
# not build or fetch Iggy.
#
# Each round (PAIRS rounds, default 5) runs, each on a fresh server and a fresh data directory
# under /tmp (ext4 here, the same disk for both systems):
#   iggy-fsync   iggy-bench pinned-producer: 4 producers (one stream of one partition each), 1 KiB
#                messages, 500 per batch, the topic created with enforce_fsync (iggy-bench's
#                `--enforce-fsync`: fsync on every write), IGGY_TOTAL_DATA in all (4GB)
#   sluice       sluiced --limits unlimited; bench's put-throughput: 4 connections x 8 PutRecords
#                in flight x 500 records of 1 KiB, DURATION_S (10) s; a record is acknowledged
#                only after fdatasync of its journal (group commit)
#   iggy-nofsync the same Iggy load without enforce_fsync (the page cache), as a reference
# and prints the median of the paired ratios Sluice / Iggy with fsync and Sluice / Iggy without,
# with each side's MB/s (record or message data only: 1,024 B per record, as iggy-bench counts
# its messages' payload; Sluice's partition keys and Iggy's headers are not counted).
#
# env: PAIRS (5), DURATION_S (10), IGGY_TOTAL_DATA (4GB), PUT_THROUGHPUT and SLUICED (binaries
#      instead of building target/release/{put-throughput,sluiced}), OUT (a directory for the
#      results; default: a temporary one, printed), NO_NOFSYNC=1 (skip the reference run)
#
# The servers and clients run in a network namespace of their own (unshare --net, root) where
# only loopback exists; Iggy's listeners are also configured on loopback addresses, its HTTP,
# QUIC and WebSocket listeners off.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ $# -ne 2 ]; then
    echo "usage: $0 IGGY_SERVER IGGY_BENCH" >&2
    exit 2
fi
iggy_server="$(realpath "$1")"
iggy_bench="$(realpath "$2")"
pairs="${PAIRS:-5}"
duration="${DURATION_S:-10}"
total_data="${IGGY_TOTAL_DATA:-4GB}"

if [ -z "${SLUICE_PEERS_NETNS:-}" ]; then
    [ -x "$iggy_server" ] && [ -x "$iggy_bench" ] || { echo "not executable: $iggy_server or $iggy_bench" >&2; exit 2; }
    if [ -z "${SLUICED:-}" ] || [ -z "${PUT_THROUGHPUT:-}" ]; then
        (cd "$root" && cargo build --release -q -p sluice-server --bin sluiced -p bench --bin put-throughput)
    fi
    exec unshare --net -- env SLUICE_PEERS_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' \
        "${BASH_SOURCE[0]}" "$iggy_server" "$iggy_bench"
fi
sluiced="${SLUICED:-$root/target/release/sluiced}"
put_throughput="${PUT_THROUGHPUT:-$root/target/release/put-throughput}"

# CPU seconds a process has used (all its threads), and a client's user + system seconds.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
TIMEFORMAT='%U %S'
client_cpu_s() { awk '{printf "%.2f", $1 + $2}' "$1"; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

out="${OUT:-$(mktemp -d /tmp/bench-iggy-out-XXXXXX)}"
mkdir -p "$out"
results="$out/iggy-results.txt"
: >"$results"
server_pid=""
data=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [ -n "$data" ]; then rm -rf "$data"; data=""; fi
}
trap stop_server EXIT

run_iggy() { # name fsync(0|1) round
    local port log result
    data="$(mktemp -d /tmp/bench-iggy-XXXXXX)"
    port=$(free_port)
    # Iggy reads core/server/config.toml from its working directory or else its embedded copy
    # of it; the IGGY_* variables override single keys. /tmp has no such file, so the defaults
    # of the embedded config hold for everything not set here.
    (cd "$data" && exec env IGGY_SYSTEM_PATH="$data/local_data" IGGY_TCP_ADDRESS="127.0.0.1:$port" \
        IGGY_HTTP_ENABLED=false IGGY_QUIC_ENABLED=false IGGY_WEBSOCKET_ENABLED=false \
        IGGY_SYSTEM_LOGGING_LEVEL=warn \
        "$iggy_server" --fresh --with-default-root-credentials >"$out/iggy-server-$1-$3.log" 2>&1) &
    server_pid=$!
    wait_port "$port" || { echo "iggy-server did not listen on $port (see $out/iggy-server-$1-$3.log)" >&2; exit 2; }
    log="$out/iggy-bench-$1-$3.log"
    local fsync_flag=()
    [ "$2" = 1 ] && fsync_flag=(--enforce-fsync)
    { time "$iggy_bench" --message-size 1024 --messages-per-batch 500 --total-data "$total_data" \
        "${fsync_flag[@]}" \
        pinned-producer --producers 4 tcp --server-address "127.0.0.1:$port" >"$log" 2>&1; } 2>"$log.cpu"
    server_cpu=$(cpu_s "$server_pid")
    grep -q "enforce fsync: $([ "$2" = 1 ] && echo true || echo false)" "$log" ||
        { echo "$log does not show the topic's enforce fsync setting" >&2; exit 2; }
    result=$(iggy_result "$log")
    echo "$1 $3 $result server_cpu_s=$server_cpu client_cpu_s=$(client_cpu_s "$log.cpu") "`
        `"stored_bytes=$(du -sb "$data/local_data" | cut -f1)" | tee -a "$results"
    stop_server
}

# iggy-bench's "Total throughput" adds up each producer's rate over its own time, which
# overstates the aggregate when producers finish apart (180 MB/s reported where 4 GB took 35 s).
# The aggregate here is what Sluice's figure is: all message data over the time until the last
# producer was done. iggy-bench's own figure is kept beside it.
iggy_result() { # log
    sed 's/\x1b\[[0-9;]*m//g' "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
messages = re.search(r"Benchmark: .*?, (\d+) messages, \d+ messages per batch, .*?, (\d+) bytes per message", text)
seconds = [float(s) for s in re.findall(r"Producer #\d+ → sent .*? in ([0-9.]+) s, total size", text)]
summary = re.search(r"Producers Results: Total throughput: ([0-9.]+) MB/s.*?p99 latency: ([0-9.]+) ms", text)
if not (messages and seconds and summary):
    sys.exit("no result in the iggy-bench log")
data_bytes = int(messages.group(1)) * int(messages.group(2))
print(f"mb_per_s={data_bytes / max(seconds) / 1e6:.2f} seconds={max(seconds):.2f} "
      f"iggy_reported_mb_per_s={summary.group(1)} p99_ms={summary.group(2)}")
' || { echo "no result in $1" >&2; exit 2; }
}

run_sluice() { # round
    local port log line
    data="$(mktemp -d /tmp/bench-sluice-XXXXXX)"
    port=$(free_port)
    "$sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn --listen "127.0.0.1:$port" \
        --http-listen "127.0.0.1:$(free_port)" --metrics-listen 127.0.0.1:0 >"$out/sluiced-$1.log" 2>&1 &
    server_pid=$!
    wait_port "$port" || { echo "sluiced did not listen on $port" >&2; exit 2; }
    log="$out/put-throughput-$1.log"
    { time "$put_throughput" --endpoint "127.0.0.1:$port" --connections 4 --in-flight 8 --records-per-call 500 \
        --record-bytes 1024 --duration-s "$duration" >"$log" 2>&1; } 2>"$log.cpu"
    server_cpu=$(cpu_s "$server_pid")
    line=$(grep '^PutRecords:' "$log") || { echo "no result in $log" >&2; exit 2; }
    # put-throughput's MB/s include the 8-byte keys; count record data only, as Iggy does.
    echo "sluice $1 mb_per_s=$(echo "$line" | sed -E 's/.* ([0-9.]+) records\/s.*/\1/' | awk '{printf "%.2f", $1 * 1024 / 1e6}') "`
        `"failed_records=$(echo "$line" | sed -E 's/.* ([0-9]+) failed records.*/\1/') "`
        `"seconds=$(echo "$line" | sed -E 's/.*, ([0-9.]+) s$/\1/') "`
        `"server_cpu_s=$server_cpu client_cpu_s=$(client_cpu_s "$log.cpu") "`
        `"stored_bytes=$(du -sb "$data/sluice" | cut -f1)" | tee -a "$results"
    stop_server
}

echo "$pairs rounds: iggy-fsync, sluice$([ -z "${NO_NOFSYNC:-}" ] && echo ", iggy-nofsync"); results in $out"
for round in $(seq "$pairs"); do
    run_iggy iggy-fsync 1 "$round"
    run_sluice "$round"
    [ -n "${NO_NOFSYNC:-}" ] || run_iggy iggy-nofsync 0 "$round"
done

python3 "$here/iggy_table.py" "$results" "$out/iggy-table.md"
