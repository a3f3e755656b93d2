#!/usr/bin/env bash
# A B A B (alternately first): exp.sh with sluiced-before and sluiced-after.
cd /work/ab
pairs=${PAIRS:-3}
for op in ${OPS:-PutRecord PutRecords}; do
  if [ $op = PutRecords ]; then export LUA=put_records.lua C=8; else export LUA=put_record.lua C=64; fi
  for pair in $(seq $pairs); do
    if [ $((pair % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for b in $order; do
      echo "== $op $b pair=$pair $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
      ./exp.sh /work/ab/sluiced-$b ${SECS:-8} $C 2>&1 | grep -E "RESULT|cpu|records core|latency_seconds core"
    done
  done
done
