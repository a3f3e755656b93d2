#!/usr/bin/env bash
# Interleaved engine-throughput runs: before/after alternately first, PAIRS pairs, 1 GiB each.
cd /work/ab
for pair in $(seq ${PAIRS:-4}); do
  if [ $((pair % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for b in $order; do
    rm -rf /work/ab/eng; mkdir -p /work/ab/eng
    echo "== $b pair=$pair $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    ./engine-$b --dir /work/ab/eng --bytes $((1<<30)) 2>&1 | grep -E 'raw O_DIRECT|engine|ratio'
  done
done
rm -rf /work/ab/eng
