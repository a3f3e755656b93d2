#!/usr/bin/env bash
# Native durable ingest (bench put-throughput: 4 connections x 8 in flight, 500 x 1 KiB), before/after alternately first.
cd /work/ab
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
for pair in $(seq ${PAIRS:-3}); do
  if [ $((pair % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for b in $order; do
    data=$(mktemp -d /work/ab/pt-XXXXXX); port=$(free_port)
    ./sluiced-$b --data-dir $data/s --limits unlimited --log-level warn --listen 127.0.0.1:$port --http-listen 127.0.0.1:$(free_port) --metrics-listen 127.0.0.1:0 > $data/log 2>&1 &
    pid=$!; wait_port $port
    c0=$(awk '{print $14+$15}' /proc/$pid/stat)
    line=$(./put-throughput --endpoint 127.0.0.1:$port --connections 4 --in-flight 8 --records-per-call 500 --record-bytes 1024 --duration-s ${SECS:-8} 2>&1 | grep '^PutRecords:')
    c1=$(awk '{print $14+$15}' /proc/$pid/stat)
    echo "$b pair=$pair $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) cpu_s=$(( (c1-c0) ))/100 $line"
    kill $pid; wait $pid 2>/dev/null; rm -rf $data
  done
done
