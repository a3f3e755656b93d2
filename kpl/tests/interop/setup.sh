#!/usr/bin/env bash
# Installs aws-kinesis-agg (pinned in requirements.txt) into the repository's gitignored
# .venv-kpl, for kpl/tests/interop.rs. Idempotent: a venv whose requirements are already
# installed costs one `pip install` that does nothing (about a second).
set -euo pipefail
# Two test binaries call this (kpl's interop tests and the server's producer tests), and CI
# runs them at the same time: one at a time here, or the second finds the first's venv before
# pip is in it ("No module named pip"). The lock is on this script's own file.
exec 9<"${BASH_SOURCE[0]}"
flock 9
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
venv="$root/.venv-kpl"
requirements="$root/kpl/tests/interop/requirements.txt"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$requirements"; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
