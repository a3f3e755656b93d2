#!/usr/bin/env bash
# Installs aws-kinesis-agg (pinned in requirements.txt) into the repository's gitignored
# .venv-kpl, for kpl/tests/interop.rs. Idempotent: a venv whose requirements are already
# installed costs one `pip install` that does nothing (about a second).
set -euo pipefail
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
