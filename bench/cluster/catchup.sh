#!/usr/bin/env bash
# How fast a member far behind catches up: a 3-node cluster on loopback under the loadgen's
# `endure` writes (direct to the shards' leaders); node 3 is stopped (SIGSTOP: its process
# hears nothing and answers nothing, as behind a partition, but keeps its memory) for PAUSE
# seconds while the other two write on without it, then continued (SIGCONT). From then on,
# every 100 ms, the script reads each node's records committed to its journal (applied) and
# the leaders' `sluice_raft_follower_lag_entries` (entries the slowest member is not known to
# hold). It reports:
#   - the backlog: records the leading nodes had applied at the continue that node 3 had not;
#   - applied: when node 3 has applied that backlog, and the rate it applied at meanwhile
#     (records/s and MB/s of record data), against the rate the cluster took writes at before
#     the pause;
#   - Raft: when the leaders' lag is back to at most twice what it was before the pause.
# The writes go on throughout, so node 3 catches up while new records keep coming; with
# QUIET=1 the loadgen is stopped (SIGSTOP) from the continue until node 3 has caught up, so
# that the figures are the catch-up's alone.
#
#   bench/cluster/catchup.sh [rounds] [pause-seconds]
# SLUICED and LOADGEN name the binaries (default target/release/); SHARDS (4), BATCH (100
# records per PutRecords), CONNECTIONS (4), RECORD_BYTES (1024), CORES (1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-1}"
pause="${2:-10}"
shards="${SHARDS:-4}"
batch="${BATCH:-100}"
connections="${CONNECTIONS:-4}"
record_bytes="${RECORD_BYTES:-1024}"
export CORES="${CORES:-1}"
sluiced="${SLUICED:-$root/target/release/sluiced}"
loadgen="${LOADGEN:-$root/target/release/sluice-loadgen}"
source "$root/bench/lib.sh"

bench_init cluster-catchup
start_cluster

# Records applied on each node, and the follower lag summed over nodes 1 and 2, as
# "n1 n2 n3 lag".
sample() {
    python3 - "${daemon_metrics[node1]}" "${daemon_metrics[node2]}" "${daemon_metrics[node3]}" <<'PY'
import sys, urllib.request
records, lag = [], 0
for at, port in enumerate(sys.argv[1:]):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    lines = text.splitlines()
    records.append(int(sum(float(l.rsplit(" ", 1)[1]) for l in lines if l.startswith("sluice_group_commit_records_sum"))))
    if at < 2:
        lag += int(sum(float(l.rsplit(" ", 1)[1]) for l in lines if l.startswith("sluice_raft_follower_lag_entries")))
print(*records, lag)
PY
}

endpoints="127.0.0.1:${native[1]},127.0.0.1:${native[2]},127.0.0.1:${native[3]}"
echo "catch-up: $shards shards, PutRecords of $batch x $record_bytes B on $connections connections (endure," \
    "direct); node 3 stopped for ${pause}s per round; $CORES core(s) per node; $(nproc) cores; load average $(load_average)"
"$loadgen" endure --endpoints "$endpoints" --stream catchup --shards "$shards" --batch-records "$batch" \
    --connections "$connections" --record-bytes "$record_bytes" --route direct --ack-log "$data/acks" \
    --duration-s 100000 >"$data/endure.out" 2>&1 &
pids+=($!)
loadgen_pid=$!
sleep 5
for round in $(seq "$rounds"); do
    # The intake before the pause (node 1's applied records over 3 s) and the lag in flight.
    read -r a1 _ _ _ <<<"$(sample)"
    lag_before=0
    for _ in $(seq 30); do
        read -r _ _ _ lag <<<"$(sample)"
        [ "$lag" -gt "$lag_before" ] && lag_before=$lag
        sleep 0.1
    done
    read -r b1 _ _ _ <<<"$(sample)"
    intake=$(( (b1 - a1) / 3 ))
    kill -STOP "${daemon_pid[node3]}"
    sleep "$pause"
    if [ "${QUIET:-0}" = 1 ]; then kill -STOP "$loadgen_pid"; fi
    kill -CONT "${daemon_pid[node3]}"
    started=$(date +%s.%N)
    read -r n1 n2 n3 lag <<<"$(sample)"
    target=$(( n1 > n2 ? n1 : n2 ))
    backlog=$(( target - n3 ))
    lag_peak=$lag
    applied_s="" raft_s="" n3_at_start=$n3
    while [ -z "$applied_s" ] || [ -z "$raft_s" ]; do
        sleep 0.1
        read -r n1 n2 n3 lag <<<"$(sample)"
        now=$(date +%s.%N)
        [ "$lag" -gt "$lag_peak" ] && lag_peak=$lag
        if [ -z "$applied_s" ] && [ "$n3" -ge "$target" ]; then
            applied_s=$(echo "$now - $started" | bc -l)
            applied_records=$(( n3 - n3_at_start ))
        fi
        if [ -z "$raft_s" ] && [ "$lag" -le $(( 2 * lag_before + 2 )) ]; then
            raft_s=$(echo "$now - $started" | bc -l)
        fi
        if [ "$(echo "$now - $started > 120" | bc -l)" = 1 ]; then
            echo "round $round: node 3 did not catch up within 120 s (applied ${applied_s:-no}, raft ${raft_s:-no})" >&2
            exit 1
        fi
    done
    if [ "${QUIET:-0}" = 1 ]; then kill -CONT "$loadgen_pid"; fi
    python3 - "$round" "$pause" "$intake" "$backlog" "$applied_s" "$applied_records" "$record_bytes" \
        "$lag_before" "$lag_peak" "$raft_s" "${QUIET:-0}" <<'PY' | tee -a "$data/results"
import sys
round_, pause, intake, backlog, applied_s, applied, record_bytes, lag_before, lag_peak, raft_s, quiet = sys.argv[1:]
intake, backlog, applied, record_bytes = int(intake), int(backlog), int(applied), int(record_bytes)
applied_s, raft_s = float(applied_s), float(raft_s)
rate = applied / applied_s
print(f"round {round_}: stopped {pause} s, {'no writes' if quiet == '1' else 'writes going on'} while it caught up;"
      f" intake before {intake} records/s; backlog {backlog} records"
      f" ({backlog * record_bytes / 1e6:.1f} MB); applied it in {applied_s:.2f} s at {rate:.0f} records/s"
      f" ({rate * record_bytes / 1e6:.1f} MB/s, {rate / intake if intake else float('nan'):.2f}x the intake);"
      f" follower lag {lag_before} entries before, peak {lag_peak}, back to at most twice before after {raft_s:.2f} s")
PY
    sleep 5
done
grep -E "failed|error" "$data/endure.out" | tail -3 || true
echo "load average after: $(load_average)"
