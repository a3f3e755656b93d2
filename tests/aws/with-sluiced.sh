#!/usr/bin/env bash
# Runs a command against a fresh sluiced: free ports, a temporary data directory, two cores.
# The command sees SLUICE_ENDPOINT (the HTTP API's URL). Exits with the command's status, after
# checking that sluiced stops cleanly on SIGTERM.
#
# usage: tests/aws/with-sluiced.sh [--limits kinesis|unlimited] COMMAND [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
limits=kinesis
if [ "${1:-}" = "--limits" ]; then limits="$2"; shift 2; fi
sluiced="${SLUICED:-$root/target/debug/sluiced}"
data="$(mktemp -d "${TMPDIR:-/tmp}/sluice-aws-XXXXXX")"
read -r native_port http_port < <(python3 "$root/tests/aws/ports.py" 2)
"$sluiced" --data-dir "$data/data" --cores 2 --limits "$limits" --log-level warn \
    --listen "127.0.0.1:$native_port" --http-listen "127.0.0.1:$http_port" --metrics-listen 127.0.0.1:0 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "sluiced exited during start-up" >&2; exit 1; }
    sleep 0.05
done
export SLUICE_ENDPOINT="http://127.0.0.1:$http_port"
status=0
"$@" || status=$?
kill -TERM "$pid"
if ! wait "$pid"; then echo "sluiced did not exit cleanly on SIGTERM" >&2; status=1; fi
trap - EXIT
rm -rf "$data"
exit "$status"
