#!/usr/bin/env bash
# Issue 19, "Scale": 10,000 shards over 1,000 streams on one sluiced.
#
# Part 1 (always): start a release sluiced (default configuration: Kinesis quotas, every core;
# only the account's shard limit raised from 500 to the shards asked for), create STREAMS
# streams of SHARDS shards, and report
#   - the create time: total, per-stream p50/p99/max, first vs last hundred calls;
#   - the resident memory (VmRSS, RssAnon, smaps_rollup Anonymous) empty, after creation, after
#     writing a little to every shard, after a clean restart and after a restart from SIGKILL;
#   - the idle CPU: sluiced's user+system seconds over IDLE_S seconds of nothing, from
#     /proc/PID/stat (and per thread, to name what wakes);
#   - the time from starting sluiced after a SIGKILL until every shard answered a read.
# Part 2 (unless FILL_GIB=0): write FILL_GIB GiB over every shard, SIGKILL, restart, and time
# recovery until the streams serve reads; sluiced's recovery log lines (per core: checkpoints
# read, the active segment scanned, the fdatasync) say what dominates. The data is deleted after.
#
# Usage: bench/scale/run.sh [OUT_DIR]
#   SLUICED=path (default target/release/sluiced), SCALE=path (default target/release/scale),
#   STREAMS=1000 SHARDS=10 IDLE_S=60 FILL_GIB=10 CONCURRENCY=4 DATA=dir (default: a new
#   directory under target/). Build first:
#   CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release -p sluice-server --bin sluiced
#   CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release -p bench --bin scale
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
sluiced=${SLUICED:-$root/target/release/sluiced}
scale=${SCALE:-$root/target/release/scale}
streams=${STREAMS:-1000}
shards=${SHARDS:-10}
idle_s=${IDLE_S:-60}
fill_gib=${FILL_GIB:-10}
concurrency=${CONCURRENCY:-4}
out=${1:-}
data=${DATA:-$(mktemp -d "$root/target/scale-XXXXXX")}
mkdir -p "$data"
log_dir=$(mktemp -d)
pid=

cleanup() {
    [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
say() { echo "$*" | tee -a "$log_dir/figures"; }

native=$(free_port)
http=$(free_port)
metrics=$(free_port)
config="$log_dir/sluiced.toml"
cat >"$config" <<EOF
[limit-overrides]
# AWS's default account quota is 500 open shards; the test asks for $((streams * shards)).
shard-limit = $((streams * shards))
EOF

start() { # label
    started_ms=$(now_ms)
    "$sluiced" --data-dir "$data/node" --config "$config" --log-level info \
        --listen "127.0.0.1:$native" --http-listen "127.0.0.1:$http" --metrics-listen "127.0.0.1:$metrics" \
        >"$log_dir/sluiced-$1.log" 2>&1 &
    pid=$!
}

wait_ready() { # label
    for _ in $(seq 6000); do
        grep -q "sluiced ready" "$log_dir/sluiced-$1.log" && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$log_dir/sluiced-$1.log" >&2; return 1; }
        sleep 0.01
    done
    echo "sluiced did not become ready" >&2
    return 1
}

stop() { # signal
    kill "-$1" "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}

# Resident memory of sluiced, in MiB: VmRSS and RssAnon (status), Anonymous (smaps_rollup).
memory() { # label
    python3 - "$pid" "$1" <<'PY' | tee -a "$log_dir/figures"
import sys
pid, label = sys.argv[1], sys.argv[2]
def field(path, name):
    for line in open(path):
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
status, rollup = f"/proc/{pid}/status", f"/proc/{pid}/smaps_rollup"
print(f"memory_{label}: VmRSS={field(status, 'VmRSS'):.1f} MiB RssAnon={field(status, 'RssAnon'):.1f} MiB "
      f"RssFile={field(status, 'RssFile'):.1f} MiB Anonymous={field(rollup, 'Anonymous'):.1f} MiB")
PY
}

# sluiced's CPU seconds (user + system) over `seconds` of no requests, in total and by thread.
idle_cpu() { # label seconds
    python3 - "$pid" "$1" "$2" <<'PY' | tee -a "$log_dir/figures"
import os, sys, time
pid, label, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
tick = os.sysconf("SC_CLK_TCK")
def ticks(path):
    fields = open(path).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
def threads():
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            out[tid] = (name, ticks(f"/proc/{pid}/task/{tid}/stat"))
        except OSError:
            pass
    return out
before_total, before = ticks(f"/proc/{pid}/stat"), threads()
time.sleep(seconds)
after_total, after = ticks(f"/proc/{pid}/stat"), threads()
used = (after_total - before_total) / tick
print(f"idle_cpu_{label}: {used:.2f} CPU s over {seconds:.0f} s ({100 * used / seconds:.2f}% of one core)")
busy = sorted(((after[t][1] - before.get(t, (None, 0))[1], after[t][0]) for t in after), reverse=True)
print(f"idle_cpu_{label}_threads: " + ", ".join(f"{name}={t / tick:.2f}s" for t, name in busy[:5] if t > 0))
PY
}

# sluiced's CPU seconds so far (user + system, every thread).
cpu_s() { python3 -c 'import os, sys; f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split(); print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))' "$pid"; }

run_scale() { "$scale" --endpoint "127.0.0.1:$native" --streams "$streams" --concurrency "$concurrency" "$@"; }

say "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "sluiced: $sluiced ($(git -C "$root" rev-parse --short HEAD)), streams=$streams shards=$shards, default limits (kinesis quotas), shard-limit=$((streams * shards))"

# --- Part 1: create, idle, write, restarts ------------------------------------------------------
start first
wait_ready first
sleep 2
memory empty
cpu_before=$(cpu_s)
# PERF=1: a flat CPU profile of sluiced while the streams are created (perf.create.data).
[[ -n "${PERF:-}" ]] && { perf record -q -F 499 -p "$pid" -o "$log_dir/perf.create.data" 2>/dev/null & perf_pid=$!; }
run_scale create --shards "$shards" | tee -a "$log_dir/figures"
[[ -n "${PERF:-}" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; perf report -i "$log_dir/perf.create.data" --no-children --percent-limit 1 --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 >"$log_dir/perf-create.txt"; }
say "create_sluiced_cpu_s=$(python3 -c "print(round($(cpu_s) - $cpu_before, 2))")"
sleep 5
memory created
# CREATE_ONLY=1: stop here (for interleaved A/B runs of the create path).
if [[ -n "${CREATE_ONLY:-}" ]]; then
    stop TERM
    [[ -n "$out" ]] && { mkdir -p "$out"; cp "$log_dir/figures" "$out/figures.txt"; }
    exit 0
fi
idle_cpu created "$idle_s"
run_scale write --records-per-shard 1 --record-bytes 100 | tee -a "$log_dir/figures"
sleep 5
memory written
idle_cpu written "$idle_s"
memory written_after_idle
say "catalog.json: $(stat -c %s "$data/node/catalog.json") bytes"

stop TERM
start restart
run_scale read --expect-per-shard 1 --since-ms "$started_ms" | sed 's/^/restart_/' | tee -a "$log_dir/figures"
sleep 5
memory restarted

stop KILL
start sigkill
run_scale read --expect-per-shard 1 --since-ms "$started_ms" | sed 's/^/sigkill_/' | tee -a "$log_dir/figures"
grep -h "recovered\|sluiced ready" "$log_dir/sluiced-sigkill.log" | tee -a "$log_dir/figures" || true
sleep 5
memory after_sigkill

# --- Part 2: a large data directory and recovery from SIGKILL -----------------------------------
if [[ "$fill_gib" != 0 ]]; then
    run_scale fill --bytes $((fill_gib << 30)) --record-bytes 1024 | tee -a "$log_dir/figures"
    memory filled
    say "data directory: $(du -sb "$data/node" | cut -f1) bytes, $(find "$data/node" -name '*.seg' | wc -l) segments, $(du -cb "$data"/node/journal-*/*.idx 2>/dev/null | tail -1 | cut -f1) bytes of checkpoints"
    stop KILL
    # Cold page cache for the recovery (root only); the shared machine's other files go too.
    sync
    if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; say "page cache dropped"; fi
    start recovery
    wait_ready recovery
    say "recovery_ready_ms=$(($(now_ms) - started_ms))"
    run_scale read --expect-per-shard 1 --since-ms "$started_ms" | sed 's/^/recovery_/' | tee -a "$log_dir/figures"
    grep -h "recovered\|sluiced ready" "$log_dir/sluiced-recovery.log" | tee -a "$log_dir/figures" || true
    sleep 5
    memory recovered
fi
stop TERM
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -n "$out" ]]; then
    mkdir -p "$out"
    cp "$log_dir/figures" "$out/figures.txt"
    [[ -f "$log_dir/perf-create.txt" ]] && cp "$log_dir/perf-create.txt" "$out/"
    for log in "$log_dir"/sluiced-*.log; do cp "$log" "$out/"; done
fi
rm -rf "$log_dir"
