#!/usr/bin/env bash
# Installs the Prometheus server (and promtool) from Debian for the metrics tests
# (server/tests/metrics.rs, deploy/ checks). Idempotent; fast when already installed.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
$sudo_cmd apt-get update -qq
# --no-install-recommends: the server and promtool only, not the node exporter or the web UI.
$sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
