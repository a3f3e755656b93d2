#!/usr/bin/env bash
# Installs the Prometheus server (and promtool) from Debian for the metrics tests
# (server/tests/metrics.rs, deploy/ checks). Idempotent; fast when already installed.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
# Tests run in parallel and more than one calls this (the Prometheus test and the deploy/
# checks): one installs while the others wait, then find it installed. apt itself refuses a
# second install at once ("Could not get lock /var/lib/dpkg/lock-frontend"), and waits for
# another program's apt run for up to DPkg::Lock::Timeout seconds.
exec 9>"${TMPDIR:-/tmp}/sluice-metrics-setup.lock"
flock 9
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
$sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
# --no-install-recommends: the server and promtool only, not the node exporter or the web UI.
$sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
