#!/usr/bin/env bash
# CI's performance regression check: short runs (about a minute, after the build) of the engine
# benchmark and of every load-generator scenario, compared with bench/baseline.json as ratios
# measured in the same run. No wall-clock threshold: a slow or busy machine moves both sides of
# every ratio. Exits 1 on a regression and prints the comparison; see docs/benchmarks.md.
#
#   scripts/bench-check.sh                      # compare with bench/baseline.json
#   scripts/bench-check.sh --write-baseline     # measure and write bench/baseline.json instead
#   scripts/bench-check.sh --build-only         # only build the release binaries (CI builds them
#                                               # beside the tests, then measures on a quiet machine)
#
# Builds what it needs (release: sluiced, sluice-loadgen, engine-throughput) and starts its own
# sluiced daemons on free loopback ports, with data under target/bench-check/ (a disk that
# supports O_DIRECT: not tmpfs). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

write_baseline=false
build_only=false
case "${1:-}" in
    --write-baseline) write_baseline=true ;;
    --build-only) build_only=true ;;
    "") ;;
    *) echo "usage: scripts/bench-check.sh [--write-baseline | --build-only]" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }

work=target/bench-check
# The binaries come from cargo's target directory, wherever CARGO_TARGET_DIR puts it.
release="${CARGO_TARGET_DIR:-target}/release"
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
trap 'stop_daemon; rm -rf "$work"/data-*' EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts sluiced with the given --limits profile; sets $endpoint.
start_daemon() {
    local limits=$1
    local port
    port=$(free_port)
    endpoint="127.0.0.1:$port"
    # A free HTTP port too: sluiced refuses an address another process (another run) uses.
    "$release/sluiced" --data-dir "$work/data-$limits" --listen "$endpoint" \
        --http-listen "127.0.0.1:$(free_port)" --metrics-listen 127.0.0.1:0 --limits "$limits" --log-level warn &
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

step "build (release)"
# Without delivery streams (the default feature `firehose`): nothing measured here uses them, and
# their Parquet, Arrow and object_store crates are about 90 of the daemon's 300 crates. Without
# debug info too (the release profile keeps it for profiling): it does not change the code.
CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release -p sluice-server --no-default-features --bin sluiced -p loadgen --bin sluice-loadgen \
    -p bench --bin engine-throughput
if $build_only; then
    exit 0
fi

loadgen="$release/sluice-loadgen"

# Three runs, each an interleaved pair: engine-throughput writes the raw disk, then the engine,
# seconds apart, and prints their ratio. The median of the three paired ratios is compared: the
# virtual disk's bandwidth swings 2x between runs, and a best-of would hide a regression that a
# lucky pair masks (a best-of-3 once printed 1.2).
step "engine vs raw disk (engine-throughput, 512 MiB, median of 3 paired ratios)"
for attempt in 1 2 3; do
    "$release/engine-throughput" --bytes $((512 << 20)) --dir "$work" | tee "$work/engine-$attempt.txt"
done
median_run=$(for attempt in 1 2 3; do
    printf '%s %s\n' "$(awk '/^engine\/raw ratio:/ {print $3}' "$work/engine-$attempt.txt")" "$attempt"
done | sort -g | sed -n 2p)
cp "$work/engine-${median_run#* }.txt" "$work/engine.txt"
echo "engine/raw: median of 3 paired ratios is ${median_run% *} (run ${median_run#* })"

step "limits (sluiced --limits kinesis)"
start_daemon kinesis
# 6 s phases: the first 1.5 s of each drain the full buckets; 4.5 s of steady state remain.
"$loadgen" limits --endpoint "$endpoint" --duration-s 6 --warmup-s 1.5 --json "$work/limits.json" || true

step "latency: 1 polling and 1 enhanced fan-out consumer per shard"
"$loadgen" latency --endpoint "$endpoint" --duration-s 10 --warmup-s 1 --json "$work/latency.json"
stop_daemon

step "throughput (sluiced --limits unlimited)"
start_daemon unlimited
"$loadgen" throughput --endpoint "$endpoint" --duration-s 5 --warmup-s 1 --polling-consumers 0 \
    --efo-consumers 0 --json "$work/throughput.json"
stop_daemon

step "compare with bench/baseline.json"
check=("$loadgen" check --baseline bench/baseline.json --limits "$work/limits.json" \
    --latency "$work/latency.json" --throughput "$work/throughput.json" --engine-output "$work/engine.txt")
if $write_baseline; then
    "${check[@]}" --write-measured bench/baseline.json || true
    echo "wrote bench/baseline.json from this run; review and commit it"
else
    "${check[@]}"
fi
