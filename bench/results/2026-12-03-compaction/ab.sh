#!/usr/bin/env bash
# A: rotation and compaction off (one segment never full); B: the defaults. Interleaved.
cd /work/main
export SLUICED=/work/rel-lead/release/sluiced LOADGEN=/work/rel-lead/release/sluice-loadgen
for pair in 1 2 3 4 5; do
  for variant in A B; do
    if [ $variant = A ]; then export CLUSTER_ARGS="--raft-segment-bytes 1099511627776"; else export CLUSTER_ARGS=""; fi
    echo "=== pair $pair variant $variant $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    timeout 900 bash bench/cluster/cost.sh 1 8 2>&1 | grep -v "^ "
  done
done
