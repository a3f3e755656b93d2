#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while, starting from the committed seed corpus.
#
#   scripts/fuzz.sh            30 seconds per target
#   scripts/fuzz.sh 3600       an hour per target
#
# Every target is built first in one cargo invocation (cargo links them in parallel; building
# each in its own `cargo fuzz run` cost CI minutes), with AddressSanitizer unless
# SLUICE_FUZZ_SANITIZER says otherwise (`none` for CI's short runs, see scripts/test.sh).
#
# Installs cargo-fuzz if it is missing. cargo-fuzz needs nightly-only compiler flags; the
# stable toolchain accepts them with RUSTC_BOOTSTRAP=1 (see shared/reference/toolchain.md).
# New inputs found go to a scratch corpus under target/, not into the repository; a crash
# leaves its input under fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-30}"
sanitizer="${SLUICE_FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi

targets=(
    native_frame aws_codec aws_shapes event_stream shard_iterator segment_scan state_log kpl_deaggregate sigv4_auth
    sealed_batch policy_document checkpoints agent_input metrics_request raft_log
)
echo "==> building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"
for target in "${targets[@]}"; do
    corpus="target/fuzz-corpus/$target"
    # The two AWS body targets read the same input format and share one seed corpus.
    seeds="$target"
    case "$target" in aws_codec | aws_shapes) seeds=aws_body ;; esac
    mkdir -p "$corpus"
    cp -n fuzz/corpus/"$seeds"/* "$corpus"/ 2>/dev/null || true
    echo "==> fuzzing $target for ${seconds}s"
    # cargo fuzz exits non-zero on a crash. The status is taken from PIPESTATUS inside the `||`
    # (under pipefail a failed pipeline runs it; a `|| true` there would reset PIPESTATUS and
    # let every crash pass, as it once did).
    status=0
    cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
        | grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|thread .* panicked)" \
        || status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $target failed (exit $status); the input is under fuzz/artifacts/$target" >&2
        exit "$status"
    fi
done
