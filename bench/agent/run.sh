#!/usr/bin/env bash
# The figures of issue 16 for sluice-agent against a real sluiced (docs/agent.md, "Performance"):
#
#   bench/agent/run.sh [PAIRS] [LINES]          (defaults: 5 pairs, 500,000 lines)
#
# 1. Throughput. A file of LINES Apache combined log lines (about 190 bytes each) is shipped
#    with `sluice-agent --once` into a fresh 4-shard stream of a release sluiced
#    (`--cores 1 --limits unlimited`, data on the same disk; RANDOM keys, 500 records per
#    PutRecords), once as it is ("plain") and once with LOGTOJSON (COMBINEDAPACHELOG). Each
#    agent run is paired with `cat FILE > /dev/null` timed right before it (the file is in the
#    page cache for both), and the pairs are interleaved: per round, cat+plain and
#    cat+LOGTOJSON, their order alternating between rounds. Reported per mode: the median of
#    the paired ratios agent lines/s ÷ cat lines/s, and the median lines/s. Every run checks
#    that the agent acknowledged every line (`recordsSent` of its status file).
# 2. Cost at a steady 10,000 lines/s: a writer appends 10,000 Apache lines/s (in 100-line
#    writes every 10 ms) for 40 s while the agent (no --once) ships them to the stream; the
#    agent's CPU (utime+stime from /proc over the middle 30 s) and its RSS (sampled every
#    second; the maximum and the median) are reported, with sluiced's CPU for context, and
#    the count of lines acknowledged is checked against the lines written.
#
# Binaries: $SLUICED and $AGENT, by default the release builds of main in
# /work/main/target/release (the agent's hot path is unchanged on this branch). Prints the
# load average at the start and the end; on this shared 2-core machine other engineers'
# builds run meanwhile, which is why the figures are paired ratios and medians. Starting and
# stopping sluiced is bench/lib.sh's (its data in a scratch directory removed at exit).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pairs="${1:-5}"
lines="${2:-500000}"
release="${RELEASE_DIR:-/work/main/target/release}"
sluiced_bin="${SLUICED:-$release/sluiced}"
agent_bin="${AGENT:-$release/sluice-agent}"
work="${CARGO_TARGET_DIR:-$repo/target}/agent-bench-sluiced"
rm -rf "$work" && mkdir -p "$work/logs" "$work/steady"
log="$work/logs/access.log"
echo "==> $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "    sluiced $sluiced_bin ($(stat -c %y "$sluiced_bin" | cut -d. -f1))"
echo "    agent   $agent_bin ($(stat -c %y "$agent_bin" | cut -d. -f1))"

python3 "$here/apache_lines.py" file "$log" "$lines"
bytes=$(stat -c %s "$log")
echo "==> $lines lines, $bytes bytes"

# Free ports below the ephemeral range (port 0's choice can be taken by a client's connect
# before sluiced binds it); a start that fails is retried on other ports.
free_ports() {
    python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ports = []
while len(ports) < 2:
    port = random.randrange(10000, low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); ports.append(port)
    except OSError:
        pass
    s.close()
print(*ports)'
}
root="$repo"
sluiced="$sluiced_bin"
# shellcheck source=../lib.sh
source "$repo/bench/lib.sh"
bench_init agent
agent_pid=""
writer_pid=""
cleanup() {
    for pid in $writer_pid $agent_pid; do kill "$pid" 2>/dev/null || true; done
    bench_cleanup
}
trap cleanup EXIT
# A start that fails (a port taken meanwhile) is retried on other ports.
up=""
for _ in $(seq 5); do
    read -r native_port http_port < <(free_ports)
    if CORES=1 start_sluiced main "$native_port" "$http_port"; then up=1; break; fi
done
[ -n "$up" ] || { echo "sluiced did not start" >&2; exit 1; }
sluiced_pid=${daemon_pid[main]}
call() { # $1 = operation, $2 = JSON body
    python3 - "$http_port" "$1" "$2" <<'PY'
import sys, urllib.request
port, op, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request("http://127.0.0.1:%s/" % port, data=body.encode(), method="POST", headers={
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202." + op})
urllib.request.urlopen(req).read()
PY
}
now() { date +%s.%N; }
config() { # $1 = stream, $2 = file pattern, $3 = extra flow keys
    cat > "$work/agent.json" <<JSON
{"checkpointFile": "$work/checkpoints", "kinesis.endpoint": "sluice://127.0.0.1:$native_port",
 "flows": [{"filePattern": "$2", "kinesisStream": "$1", "initialPosition": "START_OF_FILE",
            "maxBufferAgeMillis": 1000$3}]}
JSON
}
logtojson=', "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}]'
results="$work/results"
: > "$results"
run=0
one_pair() { # $1 = mode (plain | logtojson), $2 = round
    local mode=$1 round=$2 stream extra t0 t1 t2 sent
    run=$((run + 1))
    stream="bench$run"
    extra=""
    [ "$mode" = logtojson ] && extra="$logtojson"
    call CreateStream "{\"StreamName\": \"$stream\", \"ShardCount\": 4}"
    config "$stream" "$log" "$extra"
    rm -f "$work/checkpoints" "$work/checkpoints.status"
    t0=$(now); cat "$log" > /dev/null; t1=$(now)
    "$agent_bin" --config "$work/agent.json" --once --log-level warn
    t2=$(now)
    sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["flows"][0]["recordsSent"])' "$work/checkpoints.status")
    [ "$sent" -eq "$lines" ] || { echo "$mode round $round: $sent records sent, expected $lines" >&2; exit 1; }
    # The stream's data is not needed any more: keep the disk small.
    call DeleteStream "{\"StreamName\": \"$stream\"}"
    python3 - "$mode" "$round" "$t0" "$t1" "$t2" "$lines" >> "$results" <<'PY'
import sys
mode, rnd = sys.argv[1], sys.argv[2]
t0, t1, t2 = (float(x) for x in sys.argv[3:6])
lines = int(sys.argv[6])
cat, agent = t1 - t0, t2 - t1
print(f"{mode} {rnd} {lines / agent:.0f} {lines / cat:.0f} {cat / agent:.5f} {agent:.2f} {cat:.4f}")
PY
    echo "    $(tail -n 1 "$results")"
}
cat "$log" > /dev/null  # into the page cache
echo "==> throughput, $pairs rounds (mode round agent-lines/s cat-lines/s ratio agent-s cat-s)"
for round in $(seq "$pairs"); do
    if [ $((round % 2)) -eq 1 ]; then
        one_pair plain "$round"; one_pair logtojson "$round"
    else
        one_pair logtojson "$round"; one_pair plain "$round"
    fi
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for mode in ("plain", "logtojson"):
    mine = [r for r in rows if r[0] == mode]
    ratio = statistics.median(float(r[4]) for r in mine)
    rate = statistics.median(float(r[2]) for r in mine)
    cat = statistics.median(float(r[3]) for r in mine)
    print(f"==> {mode}: median {rate:.0f} lines/s; median ratio to cat {ratio:.5f} (cat median {cat:.0f} lines/s) over {len(mine)} pairs")
PY

echo "==> steady 10,000 lines/s for 40 s"
call CreateStream '{"StreamName": "steady", "ShardCount": 4}'
config steady "$work/steady/app.log" ""
rm -f "$work/checkpoints" "$work/checkpoints.status"
: > "$work/steady/app.log"
"$agent_bin" --config "$work/agent.json" --log-level warn &
agent_pid=$!
python3 "$here/apache_lines.py" steady "$work/steady/app.log" 10000 40 > "$work/writer.json" &
writer_pid=$!
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
sleep 5
t0=$(now); a0=$(ticks "$agent_pid"); s0=$(ticks "$sluiced_pid")
: > "$work/rss"
for _ in $(seq 30); do
    sleep 1
    awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status" >> "$work/rss"
done
t1=$(now); a1=$(ticks "$agent_pid"); s1=$(ticks "$sluiced_pid")
wait "$writer_pid"; writer_pid=""
written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"])' "$work/writer.json")
achieved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines_per_s"])' "$work/writer.json")
# Wait (at most 30 s) until the agent acknowledged every line, then stop it.
for _ in $(seq 300); do
    sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["flows"][0]["recordsSent"])' "$work/checkpoints.status" 2>/dev/null || echo 0)
    [ "$sent" -ge "$written" ] && break
    sleep 0.1
done
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["flows"][0]["recordsSent"])' "$work/checkpoints.status")
python3 - "$t0" "$t1" "$a0" "$a1" "$s0" "$s1" "$hz" "$work/rss" "$written" "$sent" "$achieved" <<'PY'
import statistics, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
a0, a1, s0, s1, hz = (int(x) for x in sys.argv[3:8])
rss = [int(l) for l in open(sys.argv[8]) if l.strip()]
written, sent, achieved = int(sys.argv[9]), int(sys.argv[10]), float(sys.argv[11])
span = t1 - t0
print(f"==> at {achieved:.0f} lines/s written: agent CPU {100 * (a1 - a0) / hz / span:.1f}% of one core, "
      f"RSS max {max(rss) / 1024:.1f} MiB (median {statistics.median(rss) / 1024:.1f} MiB) over {span:.0f} s; "
      f"sluiced CPU {100 * (s1 - s0) / hz / span:.1f}%; {written} lines written, {sent} acknowledged")
if sent != written:
    sys.exit("the agent did not acknowledge every line")
PY
echo "==> $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg)"
