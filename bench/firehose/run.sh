#!/usr/bin/env bash
# Issue 15's Report figures for delivery streams (Firehose), against a real sluiced and a real
# SeaweedFS S3 server, both started here on free loopback ports (bench/firehose/driver.py):
#   1. delivered MB/s per delivery configuration (Direct PUT with each CompressionFormat and with
#      Parquet conversion, a KinesisStreamAsSource delivery stream, a ZSTD Kinesis channel) as a
#      ratio to the raw ingest rate of the same records into a plain stream, interleaved A B A B,
#      median of the paired ratios;
#   2. data freshness p50/p99 at IntervalInSeconds 0 (PutRecord acknowledged → object listed),
#      to SeaweedFS and to a local directory;
#   3. duplicates and losses across SIGKILLs of sluiced during delivery.
# About 6 minutes with the defaults at load average 10 on 2 cores: not for CI.
#
# usage: bench/firehose/run.sh [driver options]   e.g. --pairs 3 --parts throughput --mib 16
#   (driver options: --parts throughput,freshness,crash --configs … --pairs 5 --mib 32
#    --threads 4 --buffer-mib 5 --interval-s 1 --fresh-rate 20 --fresh-s 30 --kills 10)
# env: SLUICED (default target/release/sluiced, built with the default `firehose` feature:
#        CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release -p sluice-server --bin sluiced),
#      PYTHON (.venv/bin/python with boto3, pyarrow, python-snappy, zstandard and SeaweedFS's
#        `weed`: firehose/tests/setup.sh), OUT (default bench/results/<UTC date>-firehose).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
sluiced="${SLUICED:-$root/target/release/sluiced}"
python="${PYTHON:-$root/.venv/bin/python}"
weed="$(dirname "$python")/weed"
out="${OUT:-$root/bench/results/$(date -u +%Y-%m-%d)-firehose}"

for need in "$sluiced" "$python" "$weed"; do
    if [ ! -x "$need" ]; then
        echo "$need is missing (see the usage at the top of $0)" >&2
        exit 1
    fi
done
mkdir -p "$out"
work="$(mktemp -d "$root/target/bench-firehose-XXXXXX")"
sampler=""
cleanup() {
    if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The machine, and its load every 10 s while the benchmark runs (other engineers' builds share it).
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD) ($(git -C "$root" status --porcelain | wc -l) files changed)"
    echo "sluiced: $sluiced ($(stat -c %y "$sluiced"))"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    echo "disk (data of sluiced and SeaweedFS): $(df -h --output=source,fstype,size,avail "$work" | tail -1)"
    for dev in /sys/block/*; do
        case "$(basename "$dev")" in loop* | zram* | ram*) continue ;; esac
        echo "block device $(basename "$dev"): rotational=$(cat "$dev/queue/rotational")" \
            "size=$(($(cat "$dev/size") / 2097152)) GiB"
    done
    echo "kernel: $(uname -r)"
    echo "SeaweedFS: $("$weed" version 2>/dev/null | head -1)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"
cat "$out/machine.txt"
(
    while true; do
        echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"
        sleep 10
    done
) >"$out/load.txt" &
sampler=$!

"$python" "$here/driver.py" --sluiced "$sluiced" --weed "$weed" --work "$work" --out "$out" "$@" \
    2> >(tee "$out/progress.txt" >&2) | tee "$out/table.txt"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
python3 - "$out/load.txt" <<'PY' | tee -a "$out/machine.txt"
import statistics, sys
ones = [float(line.split()[1]) for line in open(sys.argv[1]) if line.strip()]
print(f"load average (1 min) during the run: min {min(ones):.1f}, median {statistics.median(ones):.1f}, max {max(ones):.1f}"
      f" ({len(ones)} samples, every 10 s)")
PY
echo "results in $out"
