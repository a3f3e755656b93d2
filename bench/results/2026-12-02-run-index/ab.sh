#!/usr/bin/env bash
# A/B interleaved: A = main's engine (b5d1c4e), B = branch runindex. Five pairs each.
set -euo pipefail
out=${1:-/tmp/ri-bins/out}
mkdir -p "$out"
dir=/work/wt/runindex/target/ri-data
mkdir -p "$dir"
for i in 1 2 3 4 5; do
  for side in A B; do
    echo "== run-index $side $i load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/run-index.txt"
    /tmp/ri-bins/run-index-$side --dir "$dir" 2>&1 | tee -a "$out/run-index.txt"
  done
done
for i in 1 2 3 4 5; do
  for side in A B; do
    echo "== engine-throughput $side $i load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/engine.txt"
    /tmp/ri-bins/engine-throughput-$side --bytes $((512 << 20)) --dir "$dir" 2>&1 | tail -4 | tee -a "$out/engine.txt"
  done
done
