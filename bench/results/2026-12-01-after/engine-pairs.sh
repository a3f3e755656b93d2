#!/usr/bin/env bash
# Interleaved engine-throughput: BEFORE (a48b48b) and AFTER binaries, A B A B ..., default 2 GiB.
set -u
pairs=${PAIRS:-5}
out=$1
before=/tmp/perf-engine-bin/before/engine-throughput
after=/tmp/perf-engine-bin/after/engine-throughput
for i in $(seq "$pairs"); do
  for which in before after; do
    bin=$before; [ $which = after ] && bin=$after
    dir=$(mktemp -d /tmp/perf-engine-eng.XXXX)
    echo "pair $i $which $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out"
    "$bin" --dir "$dir" 2>&1 | tee -a "$out"
    rm -rf "$dir"
  done
done
