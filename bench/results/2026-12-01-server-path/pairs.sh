#!/usr/bin/env bash
# Sluice native durable ingest, binaries A and B interleaved (A B A B ...), iggy.sh's Sluice load.
# usage: pairs.sh OUT A_DIR B_DIR   (each dir holds sluiced and put-throughput)
set -u
out=$1; a=$2; b=$3; pairs=${PAIRS:-5}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
for i in $(seq "$pairs"); do
  for which in A B; do
    if [ $which = A ]; then bin=$a; else bin=$b; fi
    data=$(mktemp -d /tmp/perfh-sl.XXXX); port=$(free_port)
    "$bin/sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$(free_port)" --metrics-listen 127.0.0.1:0 > /dev/null 2>&1 &
    pid=$!; wait_port "$port"
    line=$("$a/put-throughput" --endpoint "127.0.0.1:$port" --connections 4 --in-flight 8 --records-per-call 500 --record-bytes 1024 --duration-s 10 2>&1 | grep '^PutRecords:')
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
    echo "pair $i $which $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) server_cpu_s=$cpu $line" | tee -a "$out"
    kill $pid; wait $pid 2>/dev/null; rm -rf "$data"
  done
done
python3 - "$out" <<'PY'
import re, sys, statistics
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"pair (\d+) (A|B) .* server_cpu_s=([0-9.]+) .* ([0-9.]+) records/s", line)
    if m: rows.setdefault(int(m.group(1)), {})[m.group(2)] = (float(m.group(4)), float(m.group(3)))
ratios = [r["B"][0] / r["A"][0] for r in rows.values() if "A" in r and "B" in r]
print("B/A paired ratios:", " ".join(f"{x:.2f}" for x in ratios), "median", f"{statistics.median(ratios):.3f}")
for k in "AB":
    mbs = [r[k][0] * 1024 / 1e6 for r in rows.values() if k in r]
    print(k, "MB/s median", f"{statistics.median(mbs):.1f}")
PY
