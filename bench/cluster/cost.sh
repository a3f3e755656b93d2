#!/usr/bin/env bash
# The cost of replication (issue 13's report): durable ingest and put-acknowledge latency of a
# 3-node cluster (`--node-id`/`--peers`, replication factor 3, every node forwarding to the
# shards' leaders) as ratios to a single node, measured in one run, interleaved
# single cluster single cluster …, with the median of the paired ratios.
#
# Both are driven by the loadgen over the native protocol through ONE address (node 1 of the
# cluster, as a client behind a single endpoint does; writes to shards node 1 does not lead are
# forwarded):
#   throughput  PutRecords of BATCH records of RECORD_BYTES, PRODUCERS connections x 8 in
#               flight, SHARDS shards, DURATION_S per run: records/s acknowledged;
#   latency     PutRecord of one RECORD_BYTES record, open loop at RATE records/s per shard,
#               SHARDS shards: put-acknowledge p50 and p99.
#
# With ROUTES="any direct" the cluster is measured twice per round: through node 1 as above
# (`cluster`), and with the loadgen's `--route direct` (`cluster-direct`: the client learns the
# shards' leaders with DescribeStreamRoutes from node 1 and writes to each leader itself,
# sluice_client::RoutedClient), and the two are compared pair by pair too. Each cluster run also
# reports how many requests the nodes forwarded (sluice_forwarded_requests_total), how many
# leader changes they saw and how many handovers leader balancing asked for (a write in flight
# at a leader change fails with a retriable error).
#
# On one machine the three nodes share its cores and its disk (and today each node writes
# every record twice, journal and Raft log: docs/replication.md), so the ratios here are a
# bound from below of what three hosts would give, not a figure for three hosts.
#
# With TLS=1 every daemon, the single node too, runs with `--tls-cert` (a certificate for
# 127.0.0.1 from a CA this script makes with openssl): the loadgen's connections, the forwarded
# requests and the peer network are all TLS. The cluster/single ratio of such a run against
# one without says what TLS between the members costs (the single node pays the clients' TLS
# as the cluster does).
#
# usage: bench/cluster/cost.sh [ROUNDS] [DURATION_S]   (defaults: 3, 8 s)
# env:   RECORD_BYTES (1024), BATCH (500), SHARDS (4), PRODUCERS (4), RATE (200), SETTLE_S (5, the
#        quiet before each latency run), CORES (1, per node, the single node included), ROUTES
#        ("any"; "direct"; "any direct"), TLS (0), CLUSTER_ARGS (more sluiced flags for the
#        cluster's nodes, e.g. --raft-segment-bytes), SLUICED / LOADGEN (default
#        target/release/…; build them first: cargo build --release -p sluice-server --bin
#        sluiced -p loadgen --bin sluice-loadgen)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-3}"
duration="${2:-8}"
record_bytes="${RECORD_BYTES:-1024}"
batch="${BATCH:-500}"
shards="${SHARDS:-4}"
producers="${PRODUCERS:-4}"
rate="${RATE:-200}"
settle_s="${SETTLE_S:-5}"
export CORES="${CORES:-1}"
routes="${ROUTES:-any}"
sluiced="${SLUICED:-$root/target/release/sluiced}"
loadgen="${LOADGEN:-$root/target/release/sluice-loadgen}"
source "$root/bench/lib.sh"

bench_init cluster-cost
tls_args=()
loadgen_tls=()
if [ "${TLS:-0}" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench-ca \
        -keyout "$data/ca.key" -out "$data/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
        -keyout "$data/node.key" -out "$data/node.csr" 2>/dev/null
    openssl x509 -req -in "$data/node.csr" -CA "$data/ca.pem" -CAkey "$data/ca.key" -CAcreateserial -days 2 \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n') -out "$data/node.pem" 2>/dev/null
    tls_args=(--tls-cert "$data/node.pem" --tls-key "$data/node.key")
    loadgen_tls=(--ca-bundle "$data/ca.pem")
fi
single_port=$(free_port)
start_sluiced single "$single_port" "$(free_port)" "${tls_args[@]}"

# shellcheck disable=SC2086 # CLUSTER_ARGS is a list of flags.
start_cluster "${tls_args[@]}" ${tls_args[0]:+--cluster-ca-bundle "$data/ca.pem"} ${CLUSTER_ARGS:-}

# The cluster's CPU time is the three nodes' together.
cluster_cpu_s() { echo "$(daemon_cpu_s node1) + $(daemon_cpu_s node2) + $(daemon_cpu_s node3)" | bc -l; }

# A counter's sum over the three nodes so far: forwarded requests, leader changes, the
# handovers leader balancing asked for.
cluster_sum() { # family
    python3 - "$1" "${daemon_metrics[node1]}" "${daemon_metrics[node2]}" "${daemon_metrics[node3]}" <<'PY'
import sys, urllib.request
family, ports = sys.argv[1], sys.argv[2:]
total = 0.0
for port in ports:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(family))
print(int(total))
PY
}
counted_families="sluice_forwarded_requests_total sluice_raft_leader_changes_total sluice_raft_leader_transfers_requested_total"
cluster_counts() { local family; for family in $counted_families; do cluster_sum "$family"; done | paste -sd' '; }

results="$data/results"
run() { # name port [route]
    local name=$1 port=$2 route=${3:-any} cpu_before cpu_after counts_before="0 0 0"
    if [ "$name" != single ]; then counts_before=$(cluster_counts); fi
    # Latency first, after SETTLE_S of quiet: right after a throughput run the disk is still
    # busy with its gigabytes (the single node's, about 3 GB in 5 s), and the single node's
    # latency runs that followed its own throughput run saw put-ack p99s of 61 to 442 ms
    # (2026-12-06).
    sleep "$settle_s"
    "$loadgen" latency "${loadgen_tls[@]}" --endpoint "127.0.0.1:$port" --route "$route" --shards "$shards" \
        --producers 2 \
        --record-bytes "$record_bytes" --rate "$rate" --polling-consumers 0 --efo-consumers 0 \
        --duration-s "$duration" --json "$data/$name-latency.json" >/dev/null
    if [ "$name" = single ]; then cpu_before=$(daemon_cpu_s single); else cpu_before=$(cluster_cpu_s); fi
    "$loadgen" throughput "${loadgen_tls[@]}" --endpoint "127.0.0.1:$port" --route "$route" --shards "$shards" \
        --producers "$producers" \
        --record-bytes "$record_bytes" --batch-records "$batch" --polling-consumers 0 --efo-consumers 0 \
        --duration-s "$duration" --json "$data/$name-throughput.json" >/dev/null
    if [ "$name" = single ]; then cpu_after=$(daemon_cpu_s single); else cpu_after=$(cluster_cpu_s); fi
    python3 - "$name" "$data/$name-throughput.json" "$data/$name-latency.json" "$cpu_before" "$cpu_after" \
        <<'PY' | tee -a "$results"
import json, sys
name, throughput, latency, cpu_before, cpu_after = sys.argv[1:]
result = json.load(open(throughput))
ingest = result["ingest"][0]
# Records refused (a leader election under way, say) are not in records/s, which counts only
# acknowledged ones; they are reported, not fatal.
if ingest["failed_records"] or ingest["throttled_records"]:
    print(f"{name}: {ingest['failed_records']} failed, {ingest['throttled_records']} throttled records"
          f" (first failure: {ingest.get('first_failure')})", file=sys.stderr)
put_ack = json.load(open(latency))["put_ack"]
# The CPU time spans the whole loadgen run, warm-up included, at about the measured rate.
records = ingest["records_per_s"] * (result["duration_s"] + result["warmup_s"])
cpu_us = (float(cpu_after) - float(cpu_before)) / records * 1e6 if records else float("nan")
print(name, ingest["records_per_s"], put_ack["p50_ms"], put_ack["p99_ms"], cpu_us,
      ingest["failed_records"] + ingest["throttled_records"])
PY
    if [ "$name" != single ]; then
        local before after
        read -ra before <<<"$counts_before"
        read -ra after <<<"$(cluster_counts)"
        echo "$name (throughput and latency runs): forwarded $((after[0] - before[0])) requests;" \
            "leader changes $((after[1] - before[1])), handovers asked by balancing $((after[2] - before[2]))" \
            | tee -a "$data/forwarded"
    fi
}

# The cluster's runs of one round, each route in ROUTES.
run_cluster() {
    for route in $routes; do
        case "$route" in
            any) run cluster "${native[1]}" any ;;
            direct) run cluster-direct "${native[1]}" direct ;;
            *) echo "ROUTES: unknown route $route (any, direct)" >&2; exit 2 ;;
        esac
    done
}

echo "cluster cost: $producers producers x 8 in flight, $shards shards, PutRecords of $batch x $record_bytes B," \
    "then PutRecord at $rate records/s per shard; ${duration}s each; $CORES core(s) per node; $(nproc) cores;" \
    "routes: $routes; TLS: ${TLS:-0}; load average $(load_average); cluster flags: ${CLUSTER_ARGS:-none}"
run_single() { run single "$single_port"; }
alternate_rounds "$rounds" run_single run_cluster
echo "load average after: $(load_average)"
# Each node's log is bounded in memory (cluster/src/log_store.rs): this is what stays resident
# after every record of the rounds above was written.
echo "resident memory after, MiB: single $(daemon_rss_mib single); cluster nodes" \
    "$(daemon_rss_mib node1) $(daemon_rss_mib node2) $(daemon_rss_mib node3)"
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    runs.setdefault(name, []).append([float(v) for v in values])
columns = ["records/s", "put-ack p50 ms", "put-ack p99 ms", "CPU µs per record (all nodes)"]
pairs = [(c, "single") for c in ("cluster", "cluster-direct") if c in runs]
if "cluster" in runs and "cluster-direct" in runs:
    pairs.append(("cluster-direct", "cluster"))
for i, column in enumerate(columns):
    print(f"{column}: " + "; ".join(f"{name} {' '.join(f'{r[i]:.4g}' for r in rows)}" for name, rows in runs.items()))
    for top, bottom in pairs:
        ratios = [t[i] / b[i] for b, t in zip(runs[bottom], runs[top])]
        print(f"  paired {top}/{bottom} {' '.join(f'{r:.3f}' for r in ratios)}, median {statistics.median(ratios):.3f}")
print("records refused (failed or throttled) per throughput run: "
      + "; ".join(f"{name} {' '.join(str(int(r[4])) for r in rows)}" for name, rows in runs.items()))
PY
