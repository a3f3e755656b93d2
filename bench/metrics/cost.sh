#!/usr/bin/env bash
# The cost of metrics on ingest, and the number of series at 1,000 shards.
#
# 1. Ingest throughput (loadgen `throughput`, 1 KiB records, 500 per PutRecords, writes only)
#    against one release sluiced with `--limits unlimited`, with and without a scrape of
#    /metrics every second, interleaved A B A B … for PAIRS pairs; prints each pair's ratio
#    and the median of the paired ratios (B/A: 1.0 means scraping costs nothing).
# 2. Series on /metrics with one 1,000-shard stream, before and after
#    EnableEnhancedMonitoring ALL.
#
# Usage: bench/metrics/cost.sh [PAIRS] [DURATION_S]   (needs `cargo build --release -p
# sluice-server -p loadgen` first)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
pairs="${1:-5}"
# PROFILE=debug runs the debug binaries (indicative only: the issue asks for release).
profile="${PROFILE:-release}"
duration="${2:-6}"
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
native=$(free_port); http=$(free_port); metrics=$(free_port)
cat >"$work/sluiced.toml" <<TOML
[limit-overrides]
shard-limit = 2000
TOML
target/$profile/sluiced --config "$work/sluiced.toml" --data-dir "$work/data" --listen "127.0.0.1:$native" \
    --http-listen "127.0.0.1:$http" --metrics-listen "127.0.0.1:$metrics" --limits unlimited --log-level warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$metrics/health/ready" >/dev/null; do sleep 0.2; done

run() { # $1: label; prints records/s
    target/$profile/sluice-loadgen throughput --endpoint "127.0.0.1:$native" --duration-s "$duration" \
        --warmup-s 1 --polling-consumers 0 --efo-consumers 0 --json "$work/$1.json" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ingest"][0]["records_per_s"])' "$work/$1.json"
}
ratios=()
for pair in $(seq 1 "$pairs"); do
    a=$(run "a$pair")
    (while true; do curl -sf "http://127.0.0.1:$metrics/metrics" >/dev/null; sleep 1; done) &
    scraper=$!
    b=$(run "b$pair")
    kill $scraper; wait $scraper 2>/dev/null || true
    ratio=$(python3 -c "print(f'{$b/$a:.4f}')")
    echo "pair $pair: without scraping $a records/s, scraping every second $b records/s, ratio $ratio"
    ratios+=("$ratio")
done
python3 -c "import statistics,sys; print('median ratio (scraping/without):', statistics.median(map(float, sys.argv[1:])))" "${ratios[@]}"

call() { # $1: operation, $2: JSON body
    curl -sf -X POST "http://127.0.0.1:$http/" -H "Content-Type: application/x-amz-json-1.1" \
        -H "X-Amz-Target: Kinesis_20131202.$1" -d "$2" >/dev/null
}
series() { curl -sf "http://127.0.0.1:$metrics/metrics" | grep -vc '^#'; }
call CreateStream '{"StreamName":"wide","ShardCount":1000}'
sleep 1
echo "series with a 1,000-shard stream: $(series)"
call EnableEnhancedMonitoring '{"StreamName":"wide","ShardLevelMetrics":["ALL"]}'
echo "series with enhanced monitoring ALL on it: $(series)"
