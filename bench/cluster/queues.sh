#!/usr/bin/env bash
# The cost of replicating the delivery state (issue 13): Kinesis queues under competing
# consumers on a 3-node cluster, where every receive and acknowledgement is an entry of the
# delivery group's Raft log, as a ratio to a single node, in one run, interleaved
# single cluster single cluster …, with the median of the paired ratios.
#
# Each run is `sluice-loadgen queue` (over HTTP, the only protocol queues speak): a fresh
# ON_DEMAND stream loaded with RECORDS records, a queue at TRIM_HORIZON, CONSUMERS consumers
# receiving 10 at a time and acknowledging what they got until every record is acknowledged;
# the figure is records received and acknowledged per second. The cluster is measured twice
# per round: through the member leading the delivery group (`cluster-leader`), and through one
# that does not (`cluster-relayed`: every queue call is relayed over HTTP to the leader, the
# stream's creation and records forwarded as usual).
#
# On one machine the three nodes share its cores and its disk (and each node writes every
# entry twice, Raft log and journal: docs/replication.md), so the ratios are a bound from
# below of what three hosts would give.
#
# usage: bench/cluster/queues.sh [ROUNDS]   (default 3)
# env:   RECORDS (5000), CONSUMERS (4), RECORD_BYTES (100), CORES (1 per node, the single node
#        too), SLUICED / LOADGEN (default target/release/…; build them first:
#        cargo build --release -p sluice-server --bin sluiced -p loadgen --bin sluice-loadgen)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-3}"
records="${RECORDS:-5000}"
consumers="${CONSUMERS:-4}"
record_bytes="${RECORD_BYTES:-100}"
export CORES="${CORES:-1}"
sluiced="${SLUICED:-$root/target/release/sluiced}"
loadgen="${LOADGEN:-$root/target/release/sluice-loadgen}"
source "$root/bench/lib.sh"

bench_init cluster-queues
single_http=$(free_port)
start_sluiced single "$(free_port)" "$single_http"

start_cluster

# The member leading the delivery group, once node 1 names one (DescribeCluster).
delivery_leader() {
    python3 - "${http[1]}" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
deadline = time.time() + 60
while time.time() < deadline:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "SluiceAdmin_20261201.DescribeCluster"})
    try:
        view = json.load(urllib.request.urlopen(request, timeout=10))
        leader = next((g["Leader"] for g in view["Groups"] if g["Group"] == "delivery"), 0)
        if leader:
            print(leader)
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("the delivery group got no leader in 60 s")
PY
}

results="$data/results"
run() { # name http-port
    local name=$1 port=$2
    "$loadgen" queue --endpoint "127.0.0.1:$port" --consumers "$consumers" --records "$records" \
        --record-bytes "$record_bytes" --redelivery-records 0 --json "$data/$name.json" >/dev/null
    python3 - "$name" "$data/$name.json" <<'PY' | tee -a "$results"
import json, sys
name, path = sys.argv[1:]
run = json.load(open(path))["throughput"][0]
print(name, run["records_per_s"])
PY
}

run_cluster() {
    local leader follower
    leader=$(delivery_leader)
    follower=$((leader % 3 + 1))
    run cluster-leader "${http[leader]}"
    run cluster-relayed "${http[follower]}"
}

echo "queue cost: $records records of $record_bytes B per run, $consumers consumers; $CORES core(s) per node;" \
    "$(nproc) cores; load average $(load_average)"
run_single() { run single "$single_http"; }
alternate_rounds "$rounds" run_single run_cluster
echo "load average after: $(load_average)"
paired_ratios "$results" "records/s" single cluster-leader cluster-relayed
