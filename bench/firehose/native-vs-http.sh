#!/usr/bin/env bash
# PutRecordBatch into one Direct PUT delivery stream over the native protocol against HTTP
# (AWS JSON 1.1, base64), the same client (bench/src/bin/firehose-put-batch.rs), interleaved
# A B A B for 6 pairs; prints one JSON line per run and the load after each pair.
# Needs: CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release -p sluice-server --bin sluiced
#        CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release -p bench --bin firehose-put-batch
#        cargo build -p sluice-client --bin sluice
# env: SECONDS_PER_RUN (4), RECORD_BYTES (1000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work=$(mktemp -d $root/target/bench-fhnative-XXXXXX)
mkdir -p $work/files
printf '[buckets.files]\ndir = "%s/files"\n' "$work" > $work/firehose.toml
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
n=$(port); h=$(port); m=$(port)
$root/target/release/sluiced --data-dir $work/data --listen 127.0.0.1:$n --http-listen 127.0.0.1:$h --metrics-listen 127.0.0.1:$m \
  --cores 1 --limits unlimited --log-level warn --firehose-config $work/firehose.toml &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $work' EXIT
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$n) 2>/dev/null && break; sleep 0.2; done
$root/target/debug/sluice --endpoint 127.0.0.1:$n firehose create-delivery-stream --delivery-stream-name bench \
  --extended-s3-destination-configuration '{"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::files", "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60}}' >/dev/null
drv=$root/target/release/firehose-put-batch
$drv --endpoint 127.0.0.1:$n --http-endpoint 127.0.0.1:$h --protocol native --seconds 2 >/dev/null
for pair in 1 2 3 4 5 6; do
  for p in native http; do
    $drv --endpoint 127.0.0.1:$n --http-endpoint 127.0.0.1:$h --protocol $p --seconds ${SECONDS_PER_RUN:-4} --record-bytes ${RECORD_BYTES:-1000}
  done
  uptime
done
