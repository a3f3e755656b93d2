#!/usr/bin/env bash
# Sluice native durable ingest, BEFORE (a48b48b) and AFTER binaries interleaved, iggy.sh's Sluice load.
set -u
out=$1; pairs=${PAIRS:-5}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
for i in $(seq "$pairs"); do
  for which in before after; do
    bin=/tmp/perf-engine-bin/$which
    data=$(mktemp -d /tmp/perf-engine-sl.XXXX); port=$(free_port)
    "$bin/sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$(free_port)" > /dev/null 2>&1 &
    pid=$!; wait_port "$port"
    line=$("$bin/put-throughput" --endpoint "127.0.0.1:$port" --connections 4 --in-flight 8 --records-per-call 500 --record-bytes 1024 --duration-s 10 2>&1 | grep '^PutRecords:')
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
    echo "pair $i $which $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) server_cpu_s=$cpu $line" | tee -a "$out"
    kill $pid; wait $pid 2>/dev/null; rm -rf "$data"
  done
done
