#!/usr/bin/env bash
# The full benchmarks: criterion micro-benchmarks, the engine against the raw disk, and every
# load-generator scenario against a real sluiced. Results go to bench/results/<UTC time>/ with a
# description of the machine; docs/benchmarks.md says how to read them. Takes about 10 minutes
# and writes a few tens of GB (removed at the end).
#
#   scripts/bench.sh                 # everything
#   scripts/bench.sh --no-micro      # skip the criterion micro-benchmarks
#
# Data goes under target/bench-run/ (a disk that supports O_DIRECT: not tmpfs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

micro=true
if [[ "${1:-}" == "--no-micro" ]]; then
    micro=false
fi

step() { printf '\n==> %s\n' "$*"; }

out="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)"
work=target/bench-run
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
daemon_pid=""
stop_daemon() {
    if [[ -n "$daemon_pid" ]]; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
        daemon_pid=""
    fi
}
trap 'stop_daemon; rm -rf "$work"' EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_daemon() {
    local limits=$1
    local port
    port=$(free_port)
    endpoint="127.0.0.1:$port"
    http_endpoint="127.0.0.1:$(free_port)"
    target/release/sluiced --data-dir "$work/data-$limits" --listen "$endpoint" --http-listen "$http_endpoint" --metrics-listen 127.0.0.1:0 \
        --limits "$limits" --log-level warn &
    daemon_pid=$!
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$daemon_pid" 2>/dev/null || { echo "sluiced exited during start-up" >&2; exit 2; }
        sleep 0.1
    done
    echo "sluiced did not start listening on $endpoint" >&2
    exit 2
}

step "machine"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "kernel: $(uname -srm)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "disk: $(df -hT "$work" | awk 'NR == 2 {print $1, $2, $3 " total,", $5 " free"}')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rustc: $(rustc -V)"
} | tee "$out/machine.txt"

step "build (release)"
cargo build --release -p sluice-server --bin sluiced -p loadgen --bin sluice-loadgen -p bench --bin engine-throughput
loadgen=target/release/sluice-loadgen

if $micro; then
    step "criterion micro-benchmarks"
    cargo bench -p bench --bench micro -- --noplot 2>&1 | tee "$out/micro.txt"
fi

step "engine vs raw disk (engine-throughput, 2 GiB)"
target/release/engine-throughput --dir "$work" | tee "$out/engine.txt"

step "limits (sluiced --limits kinesis)"
start_daemon kinesis
"$loadgen" limits --endpoint "$endpoint" --json "$out/limits.json" | tee "$out/limits.txt" || true

step "latency: 1 polling consumer per shard and 1 enhanced fan-out consumer"
"$loadgen" latency --endpoint "$endpoint" --polling-consumers 1 --efo-consumers 1 \
    --json "$out/latency-1polling.json" | tee "$out/latency-1polling.txt"

step "latency: 5 polling consumers per shard and 5 enhanced fan-out consumers"
"$loadgen" latency --endpoint "$endpoint" --polling-consumers 5 --efo-consumers 5 \
    --json "$out/latency-5polling.json" | tee "$out/latency-5polling.txt"

step "latency over the AWS JSON 1.1 API: 1 polling and 1 enhanced fan-out consumer"
"$loadgen" latency --protocol http --endpoint "$http_endpoint" --polling-consumers 1 --efo-consumers 1 \
    --json "$out/latency-http.json" | tee "$out/latency-http.txt"
stop_daemon

step "throughput (sluiced --limits unlimited)"
start_daemon unlimited
"$loadgen" throughput --endpoint "$endpoint" --record-bytes 100,1024,10240 --batch-records 100,500 \
    --duration-s 8 --json "$out/throughput.json" | tee "$out/throughput.txt"
stop_daemon

# Render the plots as PNG too when a converter is at hand (the SVGs open in any browser).
if command -v rsvg-convert > /dev/null; then
    for svg in "$out"/*.svg; do
        rsvg-convert -w 1100 "$svg" -o "${svg%.svg}.png"
    done
fi

echo
echo "results in $out"
