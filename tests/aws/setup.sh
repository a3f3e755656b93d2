#!/usr/bin/env bash
# Installs the AWS clients the tests/aws suites drive: boto3, the AWS CLI, pytest and httpx
# (HTTP/2) into the repository's .venv, and the AWS SDK for JavaScript v3 into
# tests/aws/js/node_modules (both gitignored). Idempotent; fast when already installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/aws/requirements.txt; then
    echo "pip install failed" >&2
    exit 1
fi
# npm ci installs exactly package-lock.json.
if [ ! -d tests/aws/js/node_modules/@aws-sdk/client-kinesis ] \
    || [ tests/aws/js/package-lock.json -nt tests/aws/js/node_modules/.package-lock.json ]; then
    (cd tests/aws/js && npm ci --no-audit --no-fund --loglevel=error)
fi
