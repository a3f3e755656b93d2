#!/usr/bin/env bash
# Lines/s that sluice-agent ships to a real sluiced, and the agent's CPU per GB
# (docs/agent.md, "Performance").
#
#   scripts/agent-sluiced-bench.sh [PAIRS] [LINES] [PROTOCOL]   (defaults: 5, 2000000, native)
#
# A file of LINES lines of 100 bytes (99 + newline) is shipped with `sluice-agent --once`
# (stream sink, RANDOM partition keys, 500 records / call) into a fresh 4-shard stream of a
# release sluiced (`--cores 1 --limits unlimited`, data on the same disk), PAIRS times. Each
# run is paired with `cat FILE > /dev/null` right before it (the file is in the page cache for
# both); the script prints every pair, the median lines/s, the median ratio agent/cat time,
# and the agent's user+system CPU seconds per GB shipped (from /usr/bin/time).
# PROTOCOL is `native` (sluice://) or `http` (the AWS JSON API). NO_BUILD=1 uses the release
# binaries as they are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pairs="${1:-5}"
lines="${2:-2000000}"
protocol="${3:-native}"
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p sluice-server --bin sluiced -p sluice-agent --bin sluice-agent
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$target/agent-sluiced-bench"
rm -rf "$work" && mkdir -p "$work/logs"
log="$work/logs/app.log"
python3 - "$log" "$lines" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for start in range(0, n, 100000):
        f.write("".join("line %012d %s\n" % (i, "x" * 81) for i in range(start, min(n, start + 100000))))
PY
bytes=$(stat -c %s "$log")
echo "==> $lines lines, $bytes bytes, protocol $protocol"

read -r native_port http_port < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
"$target/release/sluiced" --data-dir "$work/data" --cores 1 --limits unlimited --log-level warn \
    --listen "127.0.0.1:$native_port" --http-listen "127.0.0.1:$http_port" --metrics-listen 127.0.0.1:0 &
sluiced=$!
trap 'kill $sluiced 2>/dev/null || true; wait $sluiced 2>/dev/null || true' EXIT
for _ in $(seq 1200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then break; fi
    sleep 0.05
done
call() { # $1 = operation, $2 = JSON body
    python3 - "$http_port" "$1" "$2" <<'PY'
import sys, urllib.request
port, op, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request("http://127.0.0.1:%s/" % port, data=body.encode(), method="POST", headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202." + op})
urllib.request.urlopen(req).read()
PY
}
case "$protocol" in
    native) endpoint="sluice://127.0.0.1:$native_port" ;;
    http) endpoint="http://127.0.0.1:$http_port" ;;
    *) echo "protocol: native or http" >&2; exit 2 ;;
esac

now() { date +%s.%N; }
results="$work/results"
: > "$results"
for pair in $(seq "$pairs"); do
    stream="bench$pair"
    call CreateStream "{\"StreamName\": \"$stream\", \"ShardCount\": 4}"
    cat > "$work/agent.json" <<JSON
{"checkpointFile": "$work/checkpoints", "kinesis.endpoint": "$endpoint",
 "flows": [{"filePattern": "$log", "kinesisStream": "$stream", "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000}]}
JSON
    rm -f "$work/checkpoints" "$work/checkpoints.status"
    t0=$(now); cat "$log" > /dev/null; t1=$(now)
    /usr/bin/time -f "%U %S %M" -o "$work/time" "$target/release/sluice-agent" --config "$work/agent.json" --once --log-level warn
    t2=$(now)
    read -r user sys rss_kb < "$work/time"
    sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["flows"][0]["recordsSent"])' "$work/checkpoints.status")
    [ "$sent" -eq "$lines" ] || { echo "pair $pair: $sent records sent, expected $lines" >&2; exit 1; }
    python3 - "$t0" "$t1" "$t2" "$user" "$sys" "$rss_kb" "$lines" "$bytes" "$pair" >> "$results" <<'PY'
import sys
t0, t1, t2, user, sys_, rss = (float(x) for x in sys.argv[1:7])
lines, size, pair = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
cat, agent = t1 - t0, t2 - t1
print(f"{lines / agent:.0f} {agent / cat:.1f} {(user + sys_) / (size / 1e9):.2f} {rss / 1024:.0f} {agent:.2f} {cat:.3f}")
PY
    echo "pair $pair: $(tail -n 1 "$results")   (lines/s, agent/cat time, CPU s/GB, max RSS MiB, agent s, cat s)"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"median: {med(0):.0f} lines/s, agent/cat time ratio {med(1):.1f}, agent CPU {med(2):.2f} s per GB, max RSS {med(3):.0f} MiB")
PY
