# Helpers shared by the cost benchmarks (bench/native/auth.sh, bench/http/auth.sh,
# bench/encryption/ingest.sh, bench/cluster/*.sh): free ports, daemons and clusters started
# and stopped with the script, a credentials file, a test CA, and the summary of interleaved
# runs as paired ratios.
#
# Source it after setting `root` (the repository) and `sluiced`; then call `bench_init NAME`.
#
# Two figures per run: the rate (records/s acknowledged, what a client sees) and the daemon's
# CPU time per record (user + system time of the sluiced process over the run, divided by the
# records it committed, from its group-commit histograms). On a shared machine the rate swings
# with other engineers' builds and with fdatasync stalls of the shared disk (single runs vary by
# 3x); CPU time per record is what TLS, signature checks and sealing add, and moves far less.

# The bench principal: allowed everything, so each call costs one policy evaluation.
bench_key=AKIABENCH00000000001
bench_secret=bench-secret

# A scratch directory under target/ ($data), removed with every daemon started by
# `start_sluiced` when the script exits. target/ itself may be missing: the binaries may have
# been built elsewhere (CARGO_TARGET_DIR).
bench_init() { # name
    mkdir -p "$root/target"
    data="$(mktemp -d "$root/target/bench-$1-XXXXXX")"
    pids=()
    declare -gA daemon_pid=() daemon_metrics=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # KEEP_DATA=1 keeps the daemons' directories and the loadgen's JSON, to look into a run.
    if [ "${KEEP_DATA:-0}" = 1 ]; then echo "kept $data" >&2; else rm -rf "$data"; fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() { # port
    for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# sluiced on loopback with --limits unlimited (raw capacity), its data in $data/NAME; waits
# until both listeners answer. CORES, if set, is passed as --cores.
start_sluiced() { # name native-port http-port extra-args...
    local name=$1 port=$2 http=$3 metrics
    shift 3
    metrics=$(free_port)
    "$sluiced" --data-dir "$data/$name" --limits unlimited --log-level warn ${CORES:+--cores "$CORES"} \
        --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" --metrics-listen "127.0.0.1:$metrics" "$@" &
    pids+=($!)
    daemon_pid[$name]=$!
    daemon_metrics[$name]=$metrics
    wait_port "$port"
    wait_port "$http"
    wait_port "$metrics"
}

# A 3-node cluster, daemons node1 to node3: each node's --peers names every member's peer,
# native and HTTP addresses, so that each forwards to the others; `extra-args` go to every
# node. Sets native[1..3] and http[1..3], the nodes' client ports.
start_cluster() { # extra-args...
    local id peer_list
    local -a peers=()
    native=()
    http=()
    for id in 1 2 3; do
        native[id]=$(free_port)
        http[id]=$(free_port)
        peers+=("$id=127.0.0.1:$(free_port)/native@127.0.0.1:${native[id]}/http@127.0.0.1:${http[id]}")
    done
    peer_list=$(IFS=,; echo "${peers[*]}")
    for id in 1 2 3; do
        start_sluiced "node$id" "${native[id]}" "${http[id]}" --node-id "$id" --peers "$peer_list" "$@"
    done
}

# Runs the commands `first` and `second` (function names) ROUNDS times each, alternating which
# goes first, so that neither always runs on the warmer (or busier) machine.
alternate_rounds() { # rounds first second
    local round
    for round in $(seq "$1"); do
        if [ $((round % 2)) = 1 ]; then "$2"; "$3"; else "$3"; "$2"; fi
    done
}

# The daemon's CPU time so far (user + system, every thread), in seconds.
daemon_cpu_s() { # name
    python3 - "${daemon_pid[$1]}" <<'PY'
import os, sys
fields = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
print((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
PY
}

# The daemon's resident memory now, MiB.
daemon_rss_mib() { # name
    awk '/^VmRSS:/ { printf "%.0f\n", $2 / 1024 }' "/proc/${daemon_pid[$1]}/status"
}

# Records the daemon committed to its journals so far (the sum of its group-commit size
# histograms, every core: unlike the per-stream IncomingRecords, it survives the loadgen deleting
# its stream at the end of a run).
daemon_records() { # name
    python3 - "${daemon_metrics[$1]}" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
print(int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("sluice_group_commit_records_sum"))))
PY
}

# Runs a command (one measured run against daemon NAME) and appends the daemon's CPU time per
# committed record over it, in microseconds, to $data/cpu as `NAME VALUE`.
measure_cpu() { # name command...
    local name=$1 cpu_before records_before
    shift
    cpu_before=$(daemon_cpu_s "$name")
    records_before=$(daemon_records "$name")
    "$@"
    python3 - "$name" "$cpu_before" "$(daemon_cpu_s "$name")" "$records_before" "$(daemon_records "$name")" \
        <<'PY' | tee -a "$data/cpu"
import sys
name, cpu0, cpu1, records0, records1 = sys.argv[1], *map(float, sys.argv[2:])
print(name, (cpu1 - cpu0) / max(records1 - records0, 1) * 1e6)
PY
}

# $data/credentials.toml: the bench principal.
write_credentials() {
    cat >"$data/credentials.toml" <<TOML
[[principal]]
name = "bench"
access_key_id = "$bench_key"
secret_access_key = "$bench_secret"
policies = ['''{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}}''']
TOML
}

# $data/ca.pem, and $data/cert.pem / $data/key.pem for 127.0.0.1 issued by it (P-256).
make_test_ca() {
    local openssl="${OPENSSL:-openssl}"
    "$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$data/ca.key" \
        -out "$data/ca.pem" -subj /CN=sluice-bench-ca -days 1 2>/dev/null
    "$openssl" req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$data/key.pem" \
        -out "$data/cert.csr" -subj /CN=127.0.0.1 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$data/ext"
    "$openssl" x509 -req -in "$data/cert.csr" -CA "$data/ca.pem" -CAkey "$data/ca.key" -CAcreateserial \
        -out "$data/cert.pem" -days 1 -extfile "$data/ext" 2>/dev/null
}

# Runs a command with its standard output thrown away.
quiet() { "$@" >/dev/null; }

load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# The runs of a results file (lines `NAME VALUE`, written in the interleaved order A B … A B …),
# and for each name after the first the paired ratios NAME/FIRST (run i of NAME over run i of
# FIRST, the runs next to each other in time) and their median.
paired_ratios() { # results-file unit first other...
    python3 - "$@" <<'PY'
import statistics, sys
path, unit, first, others = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = {name: [] for name in [first, *others]}
for line in open(path):
    name, value = line.split()
    runs[name].append(float(value))
width = max(map(len, runs))
for name, values in runs.items():
    print(f"{name:{width}} {unit}:", " ".join(f"{value:.2f}" if value < 100 else f"{value:.0f}" for value in values))
for name in others:
    ratios = [b / a for a, b in zip(runs[first], runs[name])]
    print(f"paired ratios {name}/{first}:", " ".join(f"{ratio:.3f}" for ratio in ratios),
          f"median {statistics.median(ratios):.3f}")
PY
}
