#!/usr/bin/env bash
# Installs what firehose/tests need beyond the Rust toolchain, idempotently:
# - into the repository's .venv (shared with tests/aws): boto3 (tests/aws/requirements.txt),
#   pyarrow (reads delivered Parquet back), python-snappy (reads Snappy framing back);
# - the s3s-fs S3-compatible server from crates.io (into ~/.cache/sluice-tools, linked as the
#   gitignored .tools/s3s-fs), which the tests start as a real process on a free port;
# - gzip, unzip and zstd from Debian when missing (the standard tools read objects back).
# Prints how long the s3s-fs install took (it is the slow step on a fresh machine).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
tests/aws/setup.sh
.venv/bin/python -m pip install -q --disable-pip-version-check -r firehose/tests/requirements.txt
for tool in gzip unzip zstd; do
    if ! command -v "$tool" >/dev/null; then
        apt-get install -y -q "$tool" >/dev/null
    fi
done
# 0.17 needs rustc 1.96; the toolchain here is 1.95.
S3S_FS_VERSION=0.14.1
# Installed once per machine outside the clone (CI runs in a fresh clone each time, and the
# build takes minutes), then linked into the gitignored .tools/ where the tests look.
cache="${SLUICE_TOOLS_DIR:-$HOME/.cache/sluice-tools}/s3s-fs-$S3S_FS_VERSION"
if [ ! -x "$cache/bin/s3s-fs" ]; then
    start=$(date +%s)
    cargo install --quiet --locked --features binary --version "$S3S_FS_VERSION" --root "$cache" s3s-fs
    echo "s3s-fs $S3S_FS_VERSION installed in $(( $(date +%s) - start )) s"
fi
mkdir -p .tools
ln -sfn "$cache" .tools/s3s-fs
