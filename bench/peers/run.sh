#!/usr/bin/env bash
# Sluice's AWS HTTP API side by side with the Kinesis emulators: kinesalite (npm), kinesis-mock
# (npm, published as kinesis-local) and moto (pip, server mode). The same client (wrk with the
# Lua scripts of bench/http/), the same load and the same stream shape against each, interleaved
# Sluice, peer, Sluice, peer, … (PAIRS pairs per peer and operation), then one table of ratios
# Sluice / peer per operation: the median of the paired ratios of acknowledged records/s.
#
# usage: bench/peers/run.sh [DURATION_S] [CONNECTIONS]      (defaults: 10 s, 64 connections)
#
# CONNECTIONS is for PutRecord; PutRecords uses PUT_RECORDS_CONNECTIONS (8): 8 calls of 500
# records are 4,000 records in flight, enough for Sluice's group commit, while 64 of them would
# be 32,000, which a peer that answers a few such calls a second needs longer than a run to
# work off. Calls still in flight when wrk stops count for nobody, so the work they took inside
# the run is lost to the measurement: the table bounds that loss for each run by the records
# stored beyond the acknowledged ones, and marks a bound above 10%.
# env:   PAIRS (5), KINESIS_MOCK_DURATION_S (4 x DURATION_S, see duration_of),
#        PEERS ("kinesalite kinesis-mock moto"), OPERATIONS ("PutRecord PutRecords"),
#        RECORD_BYTES (1024), RECORDS per PutRecords (500, Kinesis' maximum, which every peer
#        accepts), SHARDS (4), CORES (sluiced's; all), WARMUP_S (3),
#        SLUICED (a sluiced binary instead of building target/release/sluiced),
#        SLUICED_BEFORE (a second sluiced binary, e.g. main's: measured in every pair too, on a
#        daemon of its own, alternately before and after SLUICED, and written as system
#        `before`; the table then also gives before / peer and SLUICED / before),
#        OUT (a directory for results.txt and table.md; default: a temporary one, printed)
#
# After every run the stream is read back whole with GetRecords (bench/peers/kinesis.py count):
# a run counts only if every acknowledged record is there with its length, so a peer that
# errors fast cannot look fast. Each run writes a fresh stream, deleted after it was counted.
#
# Installs what is missing into gitignored places: wrk (apt), the npm peers into
# bench/peers/node_modules, moto into bench/peers/.venv. Then it runs the measurement in a
# network namespace of its own (unshare --net, root) where only the loopback interface
# exists: kinesis-mock binds 0.0.0.0 and has no option to bind elsewhere.
#
# sluiced's data directory is under target/ (ext4 on this machine: O_DIRECT needs a real
# filesystem, not tmpfs); sluiced acknowledges after fdatasync, the emulators keep records in
# memory and never fsync.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-10}"
connections="${2:-64}"
put_records_connections="${PUT_RECORDS_CONNECTIONS:-8}"
export RECORD_BYTES="${RECORD_BYTES:-1024}" RECORDS="${RECORDS:-500}"
pairs="${PAIRS:-5}"
peers="${PEERS:-kinesalite kinesis-mock moto}"
operations="${OPERATIONS:-PutRecord PutRecords}"
shards="${SHARDS:-4}"
warmup="${WARMUP_S:-3}"
threads=2
# moto's version is pinned so that a rerun measures the same peer; npm's are in package-lock.json.
moto_version=5.2.5

if [ -z "${SLUICE_PEERS_NETNS:-}" ]; then
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
    if [ ! -x "$here/node_modules/.bin/kinesalite" ] || [ ! -x "$here/node_modules/.bin/kinesis-local" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    if [[ " $peers " == *" moto "* ]] && [ ! -x "$here/.venv/bin/moto_server" ]; then
        python3 -m venv "$here/.venv"
        "$here/.venv/bin/pip" install -q "moto[server]==$moto_version"
    fi
    if [ -z "${SLUICED:-}" ]; then
        (cd "$root" && cargo build --release -q -p sluice-server --bin sluiced)
    fi
    # Everything from here on runs where only loopback exists.
    exec unshare --net -- env SLUICE_PEERS_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' \
        "${BASH_SOURCE[0]}" "$@"
fi
sluiced="${SLUICED:-$root/target/release/sluiced}"
kinesis() { python3 "$here/kinesis.py" "$@"; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

mkdir -p "$root/target"
data="$(mktemp -d "$root/target/bench-peers-XXXXXX")"
out="${OUT:-$data/out}"
mkdir -p "$out"
results="$out/results.txt"
: >"$results"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$data/sluice"
}
trap cleanup EXIT

declare -A endpoint
port=$(free_port)
"$sluiced" --data-dir "$data/sluice" --limits unlimited --log-level warn ${CORES:+--cores "$CORES"} \
    --listen "127.0.0.1:$(free_port)" --http-listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 >"$data/sluiced.log" 2>&1 &
pids+=("$!")
endpoint[sluice]="127.0.0.1:$port"
if [ -n "${SLUICED_BEFORE:-}" ]; then
    port=$(free_port)
    "$SLUICED_BEFORE" --data-dir "$data/sluice-before" --limits unlimited --log-level warn ${CORES:+--cores "$CORES"} \
        --listen "127.0.0.1:$(free_port)" --http-listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 >"$data/sluiced-before.log" 2>&1 &
    pids+=("$!")
    endpoint[before]="127.0.0.1:$port"
fi
for peer in $peers; do
    port=$(free_port)
    case "$peer" in
    kinesalite)
        "$here/node_modules/.bin/kinesalite" --port "$port" --createStreamMs 0 --deleteStreamMs 0 \
            --updateStreamMs 0 --shardLimit 10000 >"$data/kinesalite.log" 2>&1 &
        ;;
    kinesis-mock)
        # Stream state changes take 500 ms by default. The TLS listener is not used, but it
        # starts anyway and needs the certificate file the package ships.
        env KINESIS_MOCK_PLAIN_PORT="$port" KINESIS_MOCK_TLS_PORT="$(free_port)" LOG_LEVEL=WARN \
            KINESIS_MOCK_CERT_PATH="$here/node_modules/kinesis-local/server.json" \
            SHARD_LIMIT=10000 CREATE_STREAM_DURATION=1ms DELETE_STREAM_DURATION=1ms \
            node "$here/node_modules/kinesis-local/main.js" >"$data/kinesis-mock.log" 2>&1 &
        ;;
    moto)
        "$here/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$data/moto.log" 2>&1 &
        ;;
    *) echo "unknown peer $peer (known: kinesalite kinesis-mock moto)" >&2; exit 2 ;;
    esac
    pids+=("$!")
    endpoint[$peer]="127.0.0.1:$port"
done
for system in "${!endpoint[@]}"; do
    wait_port "${endpoint[$system]##*:}" || { echo "$system did not listen on ${endpoint[$system]}" >&2; exit 2; }
done

script_of() { case "$1" in PutRecord) echo put_record.lua ;; PutRecords) echo put_records.lua ;; esac; }
serial=0
# kinesis-mock answered one PutRecords of 500 records every ~3 s and 30-40 PutRecord calls a
# second on the shared development machine, and it works on all calls in flight at once, so a
# run must be long against connections x that for the calls it had not finished when wrk
# stopped (which count for nobody) to matter little. Both sides of a pair run as long.
duration_of() { case "$1" in kinesis-mock) echo "${KINESIS_MOCK_DURATION_S:-$((duration * 4))}" ;; *) echo "$duration" ;; esac; }
connections_of() { case "$1" in PutRecords) echo "$put_records_connections" ;; *) echo "$connections" ;; esac; }
measure() { # system(sluice|peer) peer operation pair endpoint
    local system=$1 peer=$2 operation=$3 pair=$4 at=$5 stream line stored
    serial=$((serial + 1))
    stream="peers-$serial"
    kinesis create "$at" "$stream" "$shards"
    line=$(STREAM="$stream" wrk -t "$threads" -c "$(connections_of "$operation")" -d "$(duration_of "$peer")" --timeout 120s --latency \
        -s "$root/bench/http/$(script_of "$operation")" "http://$at" | grep '^RESULT')
    stored=$(kinesis count "$at" "$stream" "$RECORD_BYTES")
    kinesis delete "$at" "$stream"
    echo "$system $peer $operation $pair $line connections=$(connections_of "$operation") stored=$stored" | tee -a "$results"
}
warm() { # endpoint operation
    local stream="warmup-$RANDOM$RANDOM"
    kinesis create "$1" "$stream" "$shards"
    STREAM="$stream" wrk -t "$threads" -c "$(connections_of "$2")" -d "$warmup" --timeout 120s \
        -s "$root/bench/http/$(script_of "$2")" "http://$1" >/dev/null
    kinesis delete "$1" "$stream"
}

echo "wrk: $threads threads, $connections connections for PutRecord, $put_records_connections for PutRecords, ${duration}s per run, $pairs pairs per peer and operation;" \
    "$RECORD_BYTES-byte records; PutRecords of $RECORDS records; $shards shards; $(nproc) cores"
echo "results: $out"
for operation in $operations; do
    for peer in $peers; do
        warm "${endpoint[sluice]}" "$operation"
        if [ -n "${endpoint[before]:-}" ]; then warm "${endpoint[before]}" "$operation"; fi
        warm "${endpoint[$peer]}" "$operation"
        for pair in $(seq "$pairs"); do
            # With SLUICED_BEFORE: before, Sluice, peer in odd pairs; Sluice, before, peer in even ones.
            if [ -n "${endpoint[before]:-}" ] && [ $((pair % 2)) = 1 ]; then
                measure before "$peer" "$operation" "$pair" "${endpoint[before]}"
            fi
            measure sluice "$peer" "$operation" "$pair" "${endpoint[sluice]}"
            if [ -n "${endpoint[before]:-}" ] && [ $((pair % 2)) = 0 ]; then
                measure before "$peer" "$operation" "$pair" "${endpoint[before]}"
            fi
            measure peer "$peer" "$operation" "$pair" "${endpoint[$peer]}"
        done
    done
done
echo
if [ -n "${endpoint[before]:-}" ]; then
    # Three tables from the one run: SLUICED / peer, SLUICED_BEFORE / peer, SLUICED / SLUICED_BEFORE.
    grep -v '^before ' "$results" >"$out/results-after.txt"
    grep -v '^sluice ' "$results" | sed 's/^before /sluice /' >"$out/results-before.txt"
    grep -v '^peer ' "$results" | sed 's/^sluice /peer /; s/^before /sluice /' >"$out/results-before-vs-after.txt"
    # Each table exits non-zero if it has a PROBLEM line; print all three, then say so.
    status=0
    echo "## SLUICED ($sluiced) / peer"
    kinesis table "$out/results-after.txt" "$out/table.md" || status=1
    echo "## SLUICED_BEFORE ($SLUICED_BEFORE) / peer"
    kinesis table "$out/results-before.txt" "$out/table-before.md" || status=1
    echo "## SLUICED_BEFORE / SLUICED (the 'peer' column is SLUICED: a ratio below 1 means SLUICED is faster)"
    kinesis table "$out/results-before-vs-after.txt" "$out/table-before-vs-after.md" || status=1
    exit "$status"
else
    kinesis table "$results" "$out/table.md"
fi
