#!/usr/bin/env bash
# The producer's figure for issue 14: user records/s into one shard under --limits kinesis,
# 100-byte user records, with aggregation (A) and without (B), interleaved A B A B ...
#
#   scripts/bench-producer.sh [PAIRS] [SECONDS]
#
# Starts a release sluiced (1 core, --limits kinesis) on a temporary data directory under
# target/, creates one single-shard stream per run (so no run inherits another's token
# buckets), and feeds `sluice produce --metrics` about SECONDS worth of records at the quota
# (10,000 records/s with aggregation, 1,000 without). Each run's rate is user records put /
# wall time of the command (start-up, first ListShards and the final flush included). Prints
# every run's metrics line and the medians. Build first:
#   cargo build --release -p sluice-server --bin sluiced -p sluice-client --bin sluice
set -euo pipefail
pairs="${1:-5}"
seconds="${2:-20}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/target/release"
work="$(mktemp -d "$root/target/bench-producer.XXXXXX")"
trap 'kill "$daemon" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
native="127.0.0.1:$(port)"
http="127.0.0.1:$(port)"
"$bin/sluiced" --data-dir "$work/data" --listen "$native" --http-listen "$http" --cores 1 \
    --limits kinesis --log-level warn &
daemon=$!
for _ in $(seq 100); do
    "$bin/sluice" --endpoint "$native" list-streams >/dev/null 2>&1 && break
    sleep 0.1
done

# 100-byte records, one per line: the line number, padded with 'x'.
make_input() {
    python3 -c "
import sys
out = sys.stdout
for i in range($1):
    s = str(i)
    out.write(s + 'x' * (100 - len(s)) + '\n')
" > "$2"
}
make_input $((10000 * seconds)) "$work/aggregated.txt"
make_input $((1000 * seconds)) "$work/plain.txt"

run() { # name input aggregation
    local stream="bench-$1"
    "$bin/sluice" --endpoint "$native" create-stream --stream-name "$stream" --shard-count 1
    until "$bin/sluice" --endpoint "$native" describe-stream-summary --stream-name "$stream" | grep -q '"ACTIVE"'; do
        sleep 0.1
    done
    "$bin/sluice" --endpoint "$native" produce --stream-name "$stream" --metrics \
        --aggregation-enabled "$3" < "$2" 2>&1 >/dev/null | tail -1
}

results="$work/results"
for pair in $(seq "$pairs"); do
    echo "A $pair $(run "a$pair" "$work/aggregated.txt" true)" | tee -a "$results"
    echo "B $pair $(run "b$pair" "$work/plain.txt" false)" | tee -a "$results"
done
python3 - "$results" <<'EOF'
import json, statistics, sys
runs = {"A": [], "B": []}
for line in open(sys.argv[1]):
    kind, pair, metrics = line.split(" ", 2)
    runs[kind].append(json.loads(metrics))
rate = lambda kind: [m["UserRecordsPerS"] for m in runs[kind]]
ratios = [a / b for a, b in zip(rate("A"), rate("B"))]
print(f"with aggregation:    median {statistics.median(rate('A')):.0f} user records/s per shard {sorted(round(r) for r in rate('A'))}")
print(f"without aggregation: median {statistics.median(rate('B')):.0f} user records/s per shard {sorted(round(r) for r in rate('B'))}")
print(f"median paired ratio A/B: {statistics.median(ratios):.2f}")
print(f"aggregation ratio (user records per Kinesis record), median: {statistics.median(m['AggregationRatio'] for m in runs['A']):.1f}")
print(f"throttled calls, median: A {statistics.median(m['Throttles'] for m in runs['A'])}, B {statistics.median(m['Throttles'] for m in runs['B'])}")
EOF
