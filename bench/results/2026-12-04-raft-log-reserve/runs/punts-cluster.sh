#!/usr/bin/env bash
# punts-cluster.sh SLUICED LOADGEN: io_uring requests handed to worker threads, by opcode, during
# 3 s of a 3-node cluster's ingest (loadgen throughput through node 1: 4 producers x 8 in
# flight, PutRecords of 500 x 1 KiB, 4 shards; replication factor 3, each node one core).
set -euo pipefail
sluiced=$1 loadgen=$2
root=/work/main
source "$root/bench/lib.sh"
export CORES=1
bench_init raft-punts
peers=(); native=(); http=()
for id in 1 2 3; do
    native[id]=$(free_port); http[id]=$(free_port)
    peers+=("$id=127.0.0.1:$(free_port)/native@127.0.0.1:${native[id]}/http@127.0.0.1:${http[id]}")
done
peer_list=$(IFS=,; echo "${peers[*]}")
for id in 1 2 3; do start_sluiced "node$id" "${native[id]}" "${http[id]}" --node-id "$id" --peers "$peer_list"; done
sleep 3
"$loadgen" throughput --endpoint "127.0.0.1:${native[1]}" --shards 4 --producers 4 --record-bytes 1024 \
    --batch-records 500 --polling-consumers 0 --efo-consumers 0 --duration-s 8 --json "$data/t.json" >/dev/null &
lg=$!
sleep 5
perf record -q -e io_uring:io_uring_queue_async_work -e io_uring:io_uring_submit_req -a -o "$data/perf.data" -- sleep 3 2>/dev/null
wait $lg
python3 -c "import json,sys; r=json.load(open('$data/t.json'))['ingest'][0]; print('records/s', r['records_per_s'], 'failed', r['failed_records'])"
perf script -i "$data/perf.data" 2>/dev/null | sed -E 's/.*(io_uring_[a-z_]+):.*opcode ([A-Z_]+).*/\1 \2/' | sort | uniq -c | sort -rn | head -14
