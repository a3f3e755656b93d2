#!/usr/bin/env bash
# The cost of SigV4 verification and of TLS on HTTP ingest: PutRecords (1 KiB records) over
# HTTP against three sluiced daemons from the same binary: open (A), with --credentials (B),
# and with --credentials and --tls-cert (C, HTTPS), run interleaved A B C A B C … with the same
# signed requests (wrk, bench/http/put_records_signed.lua), and the median of the paired ratios
# B/A and C/A of records/s (above 1: faster than open). A run with a failed request stops the
# script.
#
# usage: bench/http/auth.sh [ROUNDS] [DURATION_S] [CONNECTIONS]   (defaults: 5, 10 s, 16)
# env:   RECORD_BYTES (1024), RECORDS per PutRecords (100), SHARDS (4), CORES (all),
#        SLUICED (default target/release/sluiced; build it first), PYTHON (default .venv/bin/python,
#        tests/aws/setup.sh installs botocore there), OPENSSL (openssl, for the test CA)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-5}"
duration="${2:-10}"
connections="${3:-16}"
export RECORD_BYTES="${RECORD_BYTES:-1024}" RECORDS="${RECORDS:-100}"
shards="${SHARDS:-4}"
sluiced="${SLUICED:-$root/target/release/sluiced}"
python="${PYTHON:-$root/.venv/bin/python}"
source "$root/bench/lib.sh"

bench_init http-auth
write_credentials
make_test_ca
open_port=$(free_port)
signed_port=$(free_port)
tls_port=$(free_port)
start_sluiced open "$(free_port)" "$open_port"
start_sluiced signed "$(free_port)" "$signed_port" --credentials "$data/credentials.toml"
start_sluiced tls "$(free_port)" "$tls_port" --credentials "$data/credentials.toml" \
    --tls-cert "$data/cert.pem" --tls-key "$data/key.pem"
declare -A url=([open]="http://127.0.0.1:$open_port" [signed]="http://127.0.0.1:$signed_port"
    [tls]="https://127.0.0.1:$tls_port")
for name in open signed tls; do
    "$python" - "${url[$name]}" "$bench_key" "$bench_secret" "$shards" "$data/ca.pem" <<'PY'
import sys, boto3
endpoint, key, secret, shards, ca = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1", verify=ca,
                       aws_access_key_id=key, aws_secret_access_key=secret)
kinesis.create_stream(StreamName="bench", ShardCount=shards)
kinesis.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
PY
done

results="$data/results"
wrk_to() { # file wrk-args...
    local file=$1
    shift
    SIGNED="$data/signed-$name" wrk "$@" >"$file"
}
run() { # name
    local name=$1 line
    # Fresh signatures each run: they are valid for 5 minutes. The host they sign is the same
    # for http:// and https://.
    "$python" "$here/sign.py" "${url[$name]}" bench "$bench_key" "$bench_secret" 32 "$RECORDS" "$RECORD_BYTES" \
        >"$data/signed-$name"
    SIGNED="$data/signed-$name" wrk -t 2 -c "$connections" -d 2 -s "$here/put_records_signed.lua" "${url[$name]}" \
        >/dev/null
    measure_cpu "$name" wrk_to "$data/wrk-$name" -t 2 -c "$connections" -d "$duration" --latency \
        -s "$here/put_records_signed.lua" "${url[$name]}"
    line=$(grep '^RESULT' "$data/wrk-$name")
    python3 - "$name" "$line" <<'PY' | tee -a "$results"
import sys
values = dict(field.split("=") for field in sys.argv[2].split()[1:])
if int(values["failed"]):
    sys.exit(f"a {sys.argv[1]} run had {values['failed']} failed requests: not comparable")
print(sys.argv[1], int(values["requests"]) * int(values["records_per_request"]) / float(values["seconds"]))
PY
}
echo "wrk: 2 threads, $connections connections, ${duration}s per run; PutRecords of $RECORDS records of" \
    "$RECORD_BYTES bytes; $shards shards; $(nproc) cores; load average $(load_average)"
for _ in $(seq "$rounds"); do
    run open
    run signed
    run tls
done
echo "load average after: $(load_average)"
echo "records/s acknowledged (higher is better):"
paired_ratios "$results" records/s open signed tls
echo "sluiced CPU time per record, µs (lower is better):"
paired_ratios "$data/cpu" "CPU µs/record" open signed tls
