#!/usr/bin/env bash
# punts.sh SLUICED: io_uring requests handed to worker threads, by opcode, during 3 s of PutRecord load.
set -euo pipefail
bin=$1
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
data=$(mktemp -d /work/ab/punt-XXXXXX)
hp=$(free_port); np=$(free_port)
"$bin" --data-dir "$data/s" --limits unlimited --log-level warn --listen 127.0.0.1:$np --http-listen 127.0.0.1:$hp --metrics-listen 127.0.0.1:0 >"$data/log" 2>&1 &
spid=$!
trap "kill $spid 2>/dev/null; wait $spid 2>/dev/null" EXIT
wait_port $hp
python3 /work/main/bench/peers/kinesis.py create 127.0.0.1:$hp s 4
STREAM=s wrk -t 2 -c 64 -d 5 --timeout 60s -s /work/main/bench/http/put_record.lua http://127.0.0.1:$hp > $data/wrk &
wpid=$!
sleep 1
perf record -q -e io_uring:io_uring_queue_async_work -e io_uring:io_uring_submit_req -a -o $data/perf.data -- sleep 3 2>/dev/null
wait $wpid
grep RESULT $data/wrk


perf script -i $data/perf.data 2>/dev/null | sed -E 's/.*(io_uring_[a-z_]+):.*opcode ([A-Z_]+).*/\1 \2/' | sort | uniq -c | sort -rn | head -12
ls -la $data/s/*/ 2>/dev/null | grep seg | head
