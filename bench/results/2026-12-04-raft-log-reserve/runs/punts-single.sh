#!/usr/bin/env bash
# punts-single.sh SLUICED LOADGEN: as punts-cluster.sh, on one node alone.
set -euo pipefail
sluiced=$1 loadgen=$2
root=/work/main
source "$root/bench/lib.sh"
export CORES=1
bench_init raft-punts1
n=$(free_port); h=$(free_port)
start_sluiced single "$n" "$h"
"$loadgen" throughput --endpoint "127.0.0.1:$n" --shards 4 --producers 4 --record-bytes 1024 \
    --batch-records 500 --polling-consumers 0 --efo-consumers 0 --duration-s 8 --json "$data/t.json" >/dev/null &
lg=$!
sleep 5
perf record -q -e io_uring:io_uring_queue_async_work -e io_uring:io_uring_submit_req -a -o "$data/perf.data" -- sleep 3 2>/dev/null
wait $lg
python3 -c "import json,sys; r=json.load(open('$data/t.json'))['ingest'][0]; print('records/s', r['records_per_s'], 'failed', r['failed_records'])"
perf script -i "$data/perf.data" 2>/dev/null | sed -E 's/.*(io_uring_[a-z_]+):.*opcode ([A-Z_]+).*/\1 \2/' | sort | uniq -c | sort -rn | head -8
