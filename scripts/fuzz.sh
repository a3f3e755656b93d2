#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while, starting from the committed seed corpus.
#
#   scripts/fuzz.sh            30 seconds per target
#   scripts/fuzz.sh 3600       an hour per target
#
# Every target is built first in one cargo invocation (cargo links them in parallel; building
# each in its own `cargo fuzz run` cost CI minutes), with AddressSanitizer unless
# SLUICE_FUZZ_SANITIZER says otherwise (`none` for CI's short runs, see scripts/test.sh), and
# optimized unless SLUICE_FUZZ_BUILD=dev (CI's short runs: an unoptimized build of the targets
# took 604 CPU-seconds where an optimized one with 16 codegen units took 1,049, both measured
# on the same busy 2-core machine; it runs fewer inputs per second, which 10 s runs can spare).
#
# Installs cargo-fuzz if it is missing. cargo-fuzz needs nightly-only compiler flags; the
# stable toolchain accepts them with RUSTC_BOOTSTRAP=1 (see shared/reference/toolchain.md).
# New inputs found go to a scratch corpus under target/, not into the repository; a crash
# leaves its input under fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-30}"
sanitizer="${SLUICE_FUZZ_SANITIZER:-address}"
build_flag=--release
if [ "${SLUICE_FUZZ_BUILD:-release}" = dev ]; then
    build_flag=--dev
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi

targets=(
    native_frame aws_codec aws_shapes event_stream shard_iterator segment_scan state_log kpl_deaggregate sigv4_auth
    sealed_batch policy_document checkpoints agent_input metrics_request raft_log firehose_bodies firehose_answer
    replicated_entry
)
echo "==> building ${#targets[@]} fuzz targets (sanitizer: $sanitizer, $build_flag)"
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer" "$build_flag"
# One target's run: its output goes to a log, of which the closing statistics are printed (and
# all of its tail if it failed). A libFuzzer run uses one core, so two run at once (`jobs`),
# which halves the step's time on CI's two cores without shortening any target's run.
fuzz_one() {
    local target=$1
    local corpus="target/fuzz-corpus/$target"
    # The two AWS body targets read the same input format and share one seed corpus.
    local seeds="$target"
    case "$target" in aws_codec | aws_shapes) seeds=aws_body ;; esac
    mkdir -p "$corpus" target/fuzz-logs
    cp -n fuzz/corpus/"$seeds"/* "$corpus"/ 2>/dev/null || true
    local log="target/fuzz-logs/$target.log"
    local status=0
    cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$build_flag" "$target" "$corpus" -- -max_total_time="$seconds" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    echo "==> fuzzed $target for ${seconds}s (exit $status)"
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|thread .* panicked)" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed (exit $status); the input is under fuzz/artifacts/$target" >&2
        return 1
    fi
}
export -f fuzz_one
# Each run passes the build's flag too, or it would rebuild the targets another way.
export seconds sanitizer build_flag
jobs="${SLUICE_FUZZ_JOBS:-2}"
echo "==> fuzzing ${#targets[@]} targets for ${seconds}s each, $jobs at a time"
# xargs runs every target and exits non-zero (123) if any failed.
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'fuzz_one "$1"' _ {}
