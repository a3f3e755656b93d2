#!/usr/bin/env bash
# Throughput and cost of sluice-agent with the file sink (docs/agent.md, "Performance").
#
#   scripts/agent-bench.sh [PAIRS] [SIZE_MB]     (defaults: 5 pairs, 1024 MB)
#
# 1. Lines/s through `sluice-agent --once --sink-file` on a generated file of Apache combined
#    log lines, without processing and with LOGTOJSON (COMBINEDAPACHELOG), each as a ratio to
#    `cat FILE > /dev/null` timed right before it in the same run (interleaved pairs; the
#    median ratio is reported). The file is in the page cache for both.
# 2. The agent's CPU and RSS while a writer appends 10,000 lines/s for 30 s.
#
# Needs ~3 × SIZE_MB of free disk under target/. Release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
pairs="${1:-5}"
size_mb="${2:-1024}"
cargo build --release -q -p sluice-agent --bin sluice-agent --example rotating_writer
target="${CARGO_TARGET_DIR:-$PWD/target}"
agent="$target/release/sluice-agent"
writer="$target/release/examples/rotating_writer"
work="$target/agent-bench"
rm -rf "$work" && mkdir -p "$work/logs"
log="$work/logs/access.log"

echo "==> generating ${size_mb} MB of Apache combined log lines"
python3 - "$log" "$size_mb" <<'PY'
import random, sys
path, size = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
random.seed(7)
paths = ["/", "/index.html", "/api/v1/orders", "/static/app.js", "/images/logo.png", "/login"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "curl/8.5.0", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Gecko/20100101 Firefox/121.0"]
with open(path, "w") as f:
    written, n = 0, 0
    block = []
    while written < size:
        line = '%d.%d.%d.%d - user%d [10/Oct/2026:13:%02d:%02d -0700] "GET %s?id=%d HTTP/1.1" %d %d "https://example.com/ref/%d" "%s"\n' % (
            random.randrange(1, 255), random.randrange(256), random.randrange(256), random.randrange(256),
            n % 1000, (n // 60) % 60, n % 60, random.choice(paths), n, random.choice([200, 200, 304, 404]),
            random.randrange(100, 90000), n % 977, random.choice(agents))
        block.append(line); written += len(line); n += 1
        if len(block) == 10000:
            f.write("".join(block)); block = []
    f.write("".join(block))
PY
lines=$(wc -l < "$log")
bytes=$(stat -c %s "$log")
echo "    $lines lines, $bytes bytes"

config() { # $1 = extra flow keys
    cat > "$work/agent.json" <<JSON
{"checkpointFile": "$work/checkpoints", "flows": [{"filePattern": "$log", "kinesisStream": "bench", "initialPosition": "START_OF_FILE"$1}]}
JSON
}
now() { date +%s.%N; }
run_agent() {
    rm -rf "$work/out" "$work/checkpoints" "$work/checkpoints.status"
    local t0 t1
    t0=$(now)
    "$agent" --config "$work/agent.json" --sink-file "$work/out" --once --log-level warn
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
run_cat() {
    local t0 t1
    t0=$(now); cat "$log" > /dev/null; t1=$(now)
    echo "$t1 - $t0" | bc -l
}
cat "$log" > /dev/null  # into the page cache
for mode in plain logtojson; do
    if [ "$mode" = plain ]; then config ""; else config ', "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}]'; fi
    ratios=()
    for i in $(seq "$pairs"); do
        c=$(run_cat)
        a=$(run_agent)
        # (`status` exits 3 because the agent is no longer running; the figures are final.)
        shipped=$({ "$agent" status --status-file "$work/checkpoints.status" --json || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"][0]["recordsSent"])')
        [ "$shipped" -eq "$lines" ] || { echo "agent shipped $shipped of $lines lines" >&2; exit 1; }
        r=$(echo "$c / $a" | bc -l)
        ratios+=("$r")
        printf '    %-9s pair %d: cat %.3f s (%.0f lines/s), agent %.3f s (%.0f lines/s), ratio %.4f\n' "$mode" "$i" "$c" "$(echo "$lines / $c" | bc -l)" "$a" "$(echo "$lines / $a" | bc -l)" "$r"
    done
    median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
    echo "==> $mode: median ratio agent/cat lines/s = $median over $pairs pairs"
done
rm -rf "$work/out"

echo "==> CPU and RSS at 10,000 lines/s (30 s, rotation every 10 s)"
rm -rf "$work/logs2" "$work/out" "$work/checkpoints"* && mkdir -p "$work/logs2"
cat > "$work/agent.json" <<JSON
{"checkpointFile": "$work/checkpoints", "flows": [{"filePattern": "$work/logs2/app.log*", "kinesisStream": "rate", "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000}]}
JSON
"$agent" --config "$work/agent.json" --sink-file "$work/out" --log-level warn &
agent_pid=$!
sleep 0.5
"$writer" "$work/logs2" app.log 10000 10000 30000 3 > "$work/writer.json" &
writer_pid=$!
sleep 5
ticks() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(now); c0=$(ticks)
rss_max=0
for _ in $(seq 20); do
    sleep 1
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
    [ "$rss" -gt "$rss_max" ] && rss_max=$rss
done
t1=$(now); c1=$(ticks)
wait "$writer_pid"
sleep 2
kill -TERM "$agent_pid"; wait "$agent_pid" || true
cpu=$(echo "($c1 - $c0) / $hz / ($t1 - $t0) * 100" | bc -l)
written=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"])' "$work/writer.json")
shipped=$({ "$agent" status --status-file "$work/checkpoints.status" --json || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"][0]["recordsSent"])')
printf '==> at 10,000 lines/s: CPU %.1f%% of one core (20 s steady window), RSS max %d KiB; %s lines written, %s shipped\n' "$cpu" "$rss_max" "$written" "$shipped"
rm -rf "$work"
