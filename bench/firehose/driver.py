"""Delivery streams' figures for issue 15, measured against a real sluiced and a real SeaweedFS.

Started by bench/firehose/run.sh (which documents the environment); three parts, each printing
its table and writing JSON under --out:

- throughput: the same 1 KiB JSON records put (A) into a plain Sluice stream with no delivery
  stream (raw ingest: first put to last acknowledgement) and (B) through a delivery
  configuration (first put to the last record readable in the bucket), interleaved A B A B;
  the figure is the median of the paired ratios B/A. Delivery configurations: Direct PUT with
  each CompressionFormat and with Parquet conversion, a KinesisStreamAsSource delivery stream,
  and a Kinesis channel with CompressionType ZSTD (ZSTD exists only for channels).
- freshness: a delivery stream at IntervalInSeconds 0 (the minimum sluiced accepts, AWS's
  "zero buffering"); one PutRecord at a time, each record's acknowledgement time against the
  first time an object holding it was listed in the bucket (S3) or present (directory).
- crash: a producer putting numbered records while sluiced is SIGKILLed N times during
  delivery and restarted; afterwards every object is read back and records delivered more
  than once or never (acknowledged but missing) are counted.

Puts and control calls are raw AWS JSON 1.1 requests (sluiced runs without --credentials, so
signatures are not checked): the request bodies are built before the clock starts, so the
client's own cost is a small share of the 2 cores. Objects are read back with boto3's S3 client.
"""

import argparse
import base64
import gzip
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile

import boto3
import botocore.config
import pyarrow.parquet
import snappy
import zstandard

ROLE = "arn:aws:iam::000000000000:role/firehose"
S3_KEY, S3_SECRET = "sluice", "sluice-secret"
BUCKET = "lake"
RECORD_BYTES = 1024
# The Parquet schema of firehose/tests/delivery.rs (Parquet conversion needs one); `customer`
# carries the padding that makes each JSON line 1 KiB, so the bytes go through the conversion.
COLUMNS = [{"Name": "n", "Type": "bigint"}, {"Name": "customer", "Type": "string"},
           {"Name": "at", "Type": "timestamp"}, {"Name": "ok", "Type": "boolean"}]
WORDS = ("click view cart checkout search home product category account login logout banner "
         "mobile desktop tablet campaign email organic referral paid social video promo sale").split()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def free_ports(n):
    """n distinct free loopback ports (all held at once so the kernel hands out n different ones)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.05)


_PADS = []


def record(n, rng):
    """Record number n: one JSON line of exactly RECORD_BYTES bytes (newline included), padded
    with words drawn from a small vocabulary (compressible as JSON logs are, about 7:1
    with gzip); the pads come from a pool of 1,024 drawn once, so building runs is cheap."""
    if not _PADS:
        pool = random.Random(1)
        for _ in range(1024):
            _PADS.append(" ".join(pool.choice(WORDS) for _ in range(RECORD_BYTES // 4)))
    head = '{"n":%d,"at":"2026-12-02T07:00:00Z","ok":%s,"customer":"' % (n, "true" if n % 2 else "false")
    tail = '"}\n'
    room = RECORD_BYTES - len(head) - len(tail)
    return (head + rng.choice(_PADS)[:room] + tail).encode()


def record_id(line):
    m = re.match(rb'\{"n":(\d+),', line)
    return int(m.group(1)) if m else None


# --- the daemons -------------------------------------------------------------------------------


class SeaweedFS:
    """`weed server -s3` on eight free ports (as firehose/tests/support/seaweedfs.rs starts it)."""

    def __init__(self, weed, workdir):
        os.makedirs(f"{workdir}/data", exist_ok=True)
        with open(f"{workdir}/s3.json", "w") as f:
            json.dump({"identities": [{"name": "sluice", "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
                                       "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
        ports = free_ports(8)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
        self.url = f"http://127.0.0.1:{s3}"
        self.proc = subprocess.Popen(
            [weed, "server", f"-dir={workdir}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
             "-master.telemetry=false", "-master.resumeState=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
             "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={workdir}/s3.json",
             f"-master.port={master}", f"-master.port.grpc={master_grpc}", f"-volume.port={volume}",
             f"-volume.port.grpc={volume_grpc}", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
             f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}"],
            stdout=subprocess.DEVNULL, stderr=open(f"{workdir}/weed.log", "w"))
        self.s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=S3_KEY,
                               aws_secret_access_key=S3_SECRET,
                               config=botocore.config.Config(retries={"max_attempts": 2}, max_pool_connections=4))
        deadline = time.monotonic() + 180
        while True:  # CreateBucket succeeds once master, volume server and filer are all up.
            try:
                self.s3.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)

    def keys(self, prefix):
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out

    def get(self, key):
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Sluiced:
    """sluiced on free loopback ports, --limits unlimited (raw capacity), its data in workdir."""

    def __init__(self, binary, workdir, firehose_config):
        self.binary, self.workdir, self.firehose_config = binary, workdir, firehose_config
        self.native, self.http, self.metrics = free_ports(3)
        self.proc = None
        self.start()

    def start(self):
        # Ports of a SIGKILLed process close with it; wait until they are free again.
        for port in (self.native, self.http, self.metrics):
            deadline = time.monotonic() + 30
            while True:
                try:
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
                    s.close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.proc = subprocess.Popen(
            [self.binary, "--data-dir", f"{self.workdir}/data", "--limits", "unlimited", "--log-level", "warn",
             "--listen", f"127.0.0.1:{self.native}", "--http-listen", f"127.0.0.1:{self.http}",
             "--metrics-listen", f"127.0.0.1:{self.metrics}", "--firehose-config", self.firehose_config],
            stdout=subprocess.DEVNULL, stderr=open(f"{self.workdir}/sluiced.log", "a"))
        for port in (self.native, self.http, self.metrics):
            wait_port(port)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def cpu_s(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def delivered_records(self, stream):
        """DeliveryToS3.Records of delivery stream `stream` (the metrics endpoint)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=10).read().decode()
        want = f'delivery_stream="{stream}"'
        total = 0
        for line in text.splitlines():
            if line.startswith("sluice_firehose_delivery_to_s3_records") and want in line:
                total += int(float(line.rsplit(" ", 1)[1]))
        return total


class Api:
    """AWS JSON 1.1 calls to sluiced's HTTP port (one keep-alive connection per instance)."""

    def __init__(self, port, timeout_s=60):
        self.port, self.timeout_s = port, timeout_s
        self.conn = None

    def call_raw(self, target, body):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        try:
            self.conn.request("POST", "/", body=body, headers={
                "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
                "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20261202/us-east-1/firehose/aws4_request, "
                                 "SignedHeaders=host, Signature=0"})
            response = self.conn.getresponse()
            data = response.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise
        out = json.loads(data) if data else {}
        if response.status != 200:
            raise RuntimeError(f"{target}: {response.status} {out}")
        return out

    def call(self, target, request):
        return self.call_raw(target, json.dumps(request).encode())

    def kinesis(self, op, **request):
        return self.call(f"Kinesis_20131202.{op}", request)

    def firehose(self, op, **request):
        return self.call(f"Firehose_20150804.{op}", request)


def b64(data):
    return base64.b64encode(data).decode()


def put_records_body(stream, records):
    return json.dumps({"StreamName": stream, "Records": [
        {"Data": b64(r), "PartitionKey": str(i)} for i, r in enumerate(records)]}).encode()


def put_record_batch_body(stream, records):
    return json.dumps({"DeliveryStreamName": stream, "Records": [{"Data": b64(r)} for r in records]}).encode()


# --- reading objects back ----------------------------------------------------------------------


def decode(key, body):
    """The records (lines) of one delivered object, decoded by standard libraries by extension."""
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    elif key.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            body = b"".join(z.read(name) for name in z.namelist())
    elif key.endswith(".hsnappy"):
        body = snappy.HadoopStreamDecompressor().decompress(body)
    elif key.endswith(".snappy"):
        body = snappy.StreamDecompressor().decompress(body)
    elif key.endswith(".zst"):
        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    elif key.endswith(".parquet"):
        table = pyarrow.parquet.read_table(io.BytesIO(body), columns=["n"])
        return [int(n) for n in table.column("n").to_pylist()]
    ids = [record_id(line) for line in body.splitlines() if line]
    if None in ids:
        raise RuntimeError(f"{key}: a line that is not one of ours")
    return ids


class Reader:
    """Reads every new object under a prefix once and counts the records of each id."""

    def __init__(self, s3, prefix):
        self.s3, self.prefix = s3, prefix
        self.seen = set()
        self.counts = {}
        self.objects = 0

    def poll(self):
        """Reads new objects; returns [(key, ids)] of this poll and the time its listing ended
        (a listed object is complete in S3: that is when it became readable, at the latest)."""
        out = []
        keys = self.s3.keys(self.prefix)
        listed = time.monotonic()
        for key in keys:
            if key in self.seen:
                continue
            self.seen.add(key)
            ids = decode(key, self.s3.get(key))
            self.objects += 1
            for n in ids:
                self.counts[n] = self.counts.get(n, 0) + 1
            out.append((key, ids))
        self.listed = listed
        return out


# --- throughput --------------------------------------------------------------------------------


def send_all(port, bodies, threads, failed_field):
    """Sends the bodies over `threads` connections; returns the time the last answer arrived.
    Records a body's answer reports failed (there should be none with --limits unlimited) are
    counted and raise."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    failures = []
    errors = []

    def work():
        api = Api(port)
        while True:
            with lock:
                if not queue:
                    return
                target, body = queue.pop()
            try:
                out = api.call_raw(target, body)
            except Exception as e:
                errors.append(e)
                return
            if out.get(failed_field):
                failures.append(out[failed_field])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    if failures:
        raise RuntimeError(f"{sum(failures)} records failed ({failed_field})")
    return time.monotonic()


def throughput(args, sluiced, s3, out_dir):
    api = Api(sluiced.http)
    rng = random.Random(15)
    # Runs are whole buffers (--mib rounded down to a multiple of --buffer-mib), so the last
    # buffer is sealed by its size as the last record arrives, not by the interval: the figure
    # is the delivery's throughput, not the buffer interval's tail. Parquet's buffer is 64 MiB
    # (AWS's minimum with format conversion), so its runs are one 64 MiB buffer; a channel's
    # buffer is 128 MiB, so it seals on its interval (channel-data-freshness-ms).
    def run_records(kind):
        mib = 64 if kind == "PARQUET" else max(1, args.mib // args.buffer_mib) * args.buffer_mib
        return mib * 1024 * 1024 // RECORD_BYTES
    batch = 500
    rounds = args.pairs
    shards = 2  # as the hidden stream of a Direct PUT delivery stream
    kinds = [k for k in args.configs.split(",") if k]

    # One plain stream per pair (A), fresh so every run starts from the same state.
    def s3_config(prefix, compression="UNCOMPRESSED", size_mib=args.buffer_mib):
        return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": prefix,
                "ErrorOutputPrefix": f"errors/{prefix}!{{firehose:error-output-type}}/",
                "CompressionFormat": compression,
                "BufferingHints": {"SizeInMBs": size_mib, "IntervalInSeconds": args.interval_s}}

    streams = {}  # kind -> (how records are put, target name, prefix)
    for kind in kinds:
        name = f"tp-{kind.lower().replace('_', '-')}"
        prefix = f"{name}/"
        if kind in ("UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"):
            api.firehose("CreateDeliveryStream", DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                         ExtendedS3DestinationConfiguration=s3_config(prefix, kind))
            streams[kind] = ("firehose", name, prefix)
        elif kind == "PARQUET":
            # AWS: with format conversion the buffer is at least 64 MiB (and compression is the
            # serializer's: Parquet's default SNAPPY).
            config = s3_config(prefix, size_mib=max(64, args.buffer_mib))
            config["DataFormatConversionConfiguration"] = {
                "Enabled": True, "SchemaConfiguration": {"SluiceColumns": COLUMNS},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}
            api.firehose("CreateDeliveryStream", DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                         ExtendedS3DestinationConfiguration=config)
            streams[kind] = ("firehose", name, prefix)
        elif kind == "STREAM_SOURCE":
            source = f"{name}-source"
            api.kinesis("CreateStream", StreamName=source, ShardCount=shards)
            arn = api.kinesis("DescribeStreamSummary", StreamName=source)["StreamDescriptionSummary"]["StreamARN"]
            api.firehose("CreateDeliveryStream", DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                         KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                         ExtendedS3DestinationConfiguration=s3_config(prefix))
            streams[kind] = ("kinesis", source, prefix, name)
        elif kind == "CHANNEL_ZSTD":
            source = f"{name}-source"
            api.kinesis("CreateStream", StreamName=source, ShardCount=shards)
            arn = api.kinesis("DescribeStreamSummary", StreamName=source)["StreamDescriptionSummary"]["StreamARN"]
            # DataFreshnessInSeconds is at least 300 in the API; the firehose config's
            # channel-data-freshness-ms (run.sh sets it to the interval) replaces it.
            api.kinesis("CreateChannel", ChannelName=name, ServiceExecutionRoleARN=ROLE,
                        StreamConfigurationList=[{"StreamARN": arn, "RecordConfiguration": {"RecordFormatType": "JSON"}}],
                        S3DestinationConfiguration={"StorageConfiguration": {
                            "BucketARN": f"arn:aws:s3:::{BUCKET}", "ExpectedBucketOwner": "000000000000",
                            "CompressionType": "ZSTD", "OutputKeyTemplate": prefix + "!{timestamp:yyyy/MM/dd/HH/}"}})
            streams[kind] = ("channel", source, prefix)
        else:
            raise SystemExit(f"unknown configuration {kind}")
    time.sleep(1)  # the delivery streams' readers start on core 0

    results = []  # dicts: kind, pair, a_mb_s, b_ack_mb_s, b_mb_s, ratio, objects, cpu
    rows_path = f"{out_dir}/throughput-runs.jsonl"
    run_number = 0
    for pair in range(rounds):
        for kind in kinds:
            run_number += 1
            records_per_run = run_records(kind)
            base = run_number * 10_000_000
            records = [record(base + i, rng) for i in range(records_per_run)]
            total_bytes = sum(map(len, records))
            chunks = [records[i:i + batch] for i in range(0, len(records), batch)]
            # A: the same records into a fresh plain stream.
            plain = f"raw-{run_number}"
            api.kinesis("CreateStream", StreamName=plain, ShardCount=shards)
            bodies = [("Kinesis_20131202.PutRecords", put_records_body(plain, c)) for c in chunks]
            cpu0 = sluiced.cpu_s()
            t0 = time.monotonic()
            t_ack = send_all(sluiced.http, bodies, args.threads, "FailedRecordCount")
            a_s = t_ack - t0
            a_cpu = sluiced.cpu_s() - cpu0
            del bodies
            # B: the delivery configuration, until every record is readable in the bucket.
            how = streams[kind]
            if how[0] == "firehose":
                bodies = [("Firehose_20150804.PutRecordBatch", put_record_batch_body(how[1], c)) for c in chunks]
                failed_field = "FailedPutCount"
            else:
                bodies = [("Kinesis_20131202.PutRecords", put_records_body(how[1], c)) for c in chunks]
                failed_field = "FailedRecordCount"
            reader = Reader(s3, how[2])
            reader.poll()  # objects of earlier runs are known, not counted again
            reader.counts.clear()
            objects0 = reader.objects
            metric_name = how[1] if how[0] == "firehose" else (how[3] if how[0] == "kinesis" else None)
            delivered0 = sluiced.delivered_records(metric_name) if metric_name else 0
            cpu0 = sluiced.cpu_s()
            t0 = time.monotonic()
            t_b_ack = send_all(sluiced.http, bodies, args.threads, failed_field)
            del bodies
            # Done when the delivery metric (DeliveryToS3.Records, counted once the store
            # acknowledged the PUT) has them all; a channel has no exported metrics yet, so
            # for it the bucket itself is polled.
            deadline = time.monotonic() + 600
            while True:
                if metric_name:
                    done = sluiced.delivered_records(metric_name) - delivered0 >= records_per_run
                else:
                    reader.poll()
                    done = sum(1 for n in reader.counts if base <= n < base + records_per_run) >= records_per_run
                if done:
                    t_done = time.monotonic()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind}: not delivered in 600 s")
                time.sleep(0.05)
            b_s = t_done - t0
            b_cpu = sluiced.cpu_s() - cpu0
            # Independent check: every record of the run read back from the bucket, once.
            deadline = time.monotonic() + 120
            while True:
                reader.poll()
                mine = {n: c for n, c in reader.counts.items() if base <= n < base + records_per_run}
                if len(mine) == records_per_run or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            missing = records_per_run - len(mine)
            duplicates = sum(c - 1 for c in mine.values())
            if missing:
                raise RuntimeError(f"{kind} run {run_number}: {missing} records missing from the bucket")
            api.kinesis("DeleteStream", StreamName=plain)
            row = {"kind": kind, "pair": pair, "records": records_per_run, "bytes": total_bytes,
                   "a_s": a_s, "a_mb_s": total_bytes / a_s / 1e6, "b_ack_mb_s": total_bytes / (t_b_ack - t0) / 1e6,
                   "b_s": b_s, "b_mb_s": total_bytes / b_s / 1e6, "ratio": a_s / b_s,
                   "a_cpu_us_per_record": a_cpu / records_per_run * 1e6,
                   "b_cpu_us_per_record": b_cpu / records_per_run * 1e6,
                   "objects": reader.objects - objects0, "duplicates": duplicates, "loadavg": os.getloadavg()[0]}
            results.append(row)
            with open(rows_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            log(f"pair {pair + 1}/{rounds} {kind:13} raw {row['a_mb_s']:6.1f} MB/s  delivered {row['b_mb_s']:6.1f} MB/s"
                f"  ratio {row['ratio']:.3f}  objects {row['objects']}  load {row['loadavg']:.1f}")

    table = ["delivered MB/s per delivery configuration, ratio to raw ingest (PutRecords into a plain "
             f"2-shard stream) in the same run; {run_records('GZIP')} records of {RECORD_BYTES} B per run "
             f"(Parquet {run_records('PARQUET')}), "
             f"{rounds} pairs, buffer {args.buffer_mib} MiB (Parquet 64) / {args.interval_s} s, SeaweedFS S3",
             f"{'configuration':14} {'source':14} {'raw MB/s':>9} {'put MB/s':>9} {'deliv MB/s':>10} "
             f"{'ratio med':>9} {'ratios (paired)':30} {'µs/rec A→B (CPU)':>17}"]
    summary = {}
    for kind in kinds:
        rows = [r for r in results if r["kind"] == kind]
        source = {"firehose": "Direct PUT", "kinesis": "Sluice stream", "channel": "stream→channel"}[streams[kind][0]]
        ratios = [r["ratio"] for r in rows]
        summary[kind] = {
            "source": source, "raw_mb_s_median": statistics.median(r["a_mb_s"] for r in rows),
            "put_mb_s_median": statistics.median(r["b_ack_mb_s"] for r in rows),
            "delivered_mb_s_median": statistics.median(r["b_mb_s"] for r in rows),
            "ratios": ratios, "ratio_median": statistics.median(ratios),
            "cpu_us_per_record_a": statistics.median(r["a_cpu_us_per_record"] for r in rows),
            "cpu_us_per_record_b": statistics.median(r["b_cpu_us_per_record"] for r in rows)}
        s = summary[kind]
        table.append(f"{kind:14} {source:14} {s['raw_mb_s_median']:9.1f} {s['put_mb_s_median']:9.1f} "
                     f"{s['delivered_mb_s_median']:10.1f} {s['ratio_median']:9.3f} "
                     f"{' '.join(f'{x:.2f}' for x in ratios):30} "
                     f"{s['cpu_us_per_record_a']:7.1f}→{s['cpu_us_per_record_b']:.1f}")
    with open(f"{out_dir}/throughput.json", "w") as f:
        json.dump({"runs": results, "summary": summary,
                   "buffer_mib": args.buffer_mib, "interval_s": args.interval_s}, f, indent=1)
    return table


# --- freshness ---------------------------------------------------------------------------------


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def freshness(args, sluiced, s3, files_dir, out_dir):
    """Ack-to-readable times at IntervalInSeconds 0, to S3 and to a directory, one run each."""
    api = Api(sluiced.http)
    rng = random.Random(16)
    table = [f"data freshness at IntervalInSeconds 0 (SizeInMBs 1, UNCOMPRESSED, Direct PUT): PutRecord "
             f"acknowledged → object listed; {args.fresh_rate}/s for {args.fresh_s} s, one record per PutRecord",
             f"{'destination':12} {'records':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
             f"{'objects':>7} {'poll ms (med)':>13}"]
    summary = {}
    for dest in ("s3", "dir"):
        name = f"fresh-{dest}"
        bucket = BUCKET if dest == "s3" else "files"
        api.firehose("CreateDeliveryStream", DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                     ExtendedS3DestinationConfiguration={
                         "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": f"{name}/",
                         "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
        time.sleep(1)
        acked = {}
        seen = {}
        polls = []
        objects = [0]
        stop = threading.Event()

        def poller():
            if dest == "s3":
                reader = Reader(s3, f"{name}/")
            known = set()
            while not stop.is_set() or len(seen) < len(acked):
                t_start = time.monotonic()
                if dest == "s3":
                    found = reader.poll()
                    objects[0] += len(found)
                    for _, ids in found:
                        for n in ids:
                            seen.setdefault(n, reader.listed)
                else:
                    t_seen = None
                    for root, _, names in os.walk(f"{files_dir}/{name}"):
                        for fname in names:
                            path = os.path.join(root, fname)
                            if fname.endswith(".tmp") or path in known:
                                continue
                            t_seen = t_seen or time.monotonic()
                            known.add(path)
                            objects[0] += 1
                            with open(path, "rb") as f:
                                for line in f.read().splitlines():
                                    seen.setdefault(record_id(line), t_seen)
                polls.append(time.monotonic() - t_start)
                if stop.is_set() and time.monotonic() > stop_deadline[0]:
                    return
                time.sleep(0.002)

        stop_deadline = [0.0]
        thread = threading.Thread(target=poller)
        thread.start()
        interval = 1 / args.fresh_rate
        count = int(args.fresh_rate * args.fresh_s)
        start = time.monotonic()
        for i in range(count):
            n = (100 + (dest == "dir")) * 10_000_000 + i
            body = json.dumps({"DeliveryStreamName": name, "Record": {"Data": b64(record(n, rng))}}).encode()
            time.sleep(max(0.0, start + i * interval - time.monotonic()))
            api.call_raw("Firehose_20150804.PutRecord", body)
            acked[n] = time.monotonic()
        stop_deadline[0] = time.monotonic() + 60
        stop.set()
        thread.join()
        lost = [n for n in acked if n not in seen]
        if lost:
            raise RuntimeError(f"freshness {dest}: {len(lost)} acknowledged records not delivered in 60 s")
        ms = [(seen[n] - acked[n]) * 1000 for n in acked]
        objects = objects[0]
        s = {"objects": objects, "records": len(ms), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
             "p99_ms": percentile(ms, 99), "max_ms": max(ms), "min_ms": min(ms), "polls_ms_median":
             statistics.median(polls) * 1000, "loadavg": os.getloadavg()}
        summary[dest] = s
        log(f"freshness {dest}: {s}")
        table.append(f"{dest:12} {s['records']:7} {s['p50_ms']:7.0f} {s['p90_ms']:7.0f} {s['p99_ms']:7.0f} "
                     f"{s['max_ms']:7.0f} {objects:>7} {s['polls_ms_median']:13.1f}")
        with open(f"{out_dir}/freshness-{dest}.json", "w") as f:
            json.dump({"summary": s, "ms": ms}, f)
    return table


# --- crashes -----------------------------------------------------------------------------------


def crash(args, sluiced, s3, out_dir):
    """SIGKILL of sluiced during delivery, args.kills times; every record read back afterwards."""
    api = Api(sluiced.http)
    name = "crashy"
    size_mib, interval_s = args.crash_buffer_mib, 1
    destination = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": f"{name}/",
                   "CompressionFormat": "GZIP",
                   "BufferingHints": {"SizeInMBs": size_mib, "IntervalInSeconds": interval_s}}
    if args.crash_source == "direct":
        api.firehose("CreateDeliveryStream", DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                     ExtendedS3DestinationConfiguration=destination)
        target, failed_field = "Firehose_20150804.PutRecordBatch", "RequestResponses"
    else:
        # KinesisStreamAsSource: the producer puts to a 2-shard Sluice stream.
        api.kinesis("CreateStream", StreamName="crashy-source", ShardCount=2)
        arn = api.kinesis("DescribeStreamSummary", StreamName="crashy-source")["StreamDescriptionSummary"]["StreamARN"]
        api.firehose("CreateDeliveryStream", DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                     KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
                     ExtendedS3DestinationConfiguration=destination)
        target, failed_field = "Kinesis_20131202.PutRecords", "Records"
    rng = random.Random(17)
    reader = Reader(s3, f"{name}/")
    acked = set()
    put = set()
    per_round = []
    batch = 100
    # Each object is tagged with the life of sluiced (0 before the first kill, k after the
    # k-th restart) that wrote it: the bucket is read while sluiced runs and once more right
    # after each kill, while it is down, so an object first seen by then belongs to a life up
    # to the current one. A record's copies in later lives are the duplicates that crash
    # caused (a copy in life k is attributed to kill k).
    lives = {}  # record -> [life of each copy]

    def read(life):
        for _, ids in reader.poll():
            for n in ids:
                lives.setdefault(n, []).append(life)

    for round_number in range(args.kills + 1):
        first = (round_number + 1) * 10_000_000
        stop = threading.Event()
        state = {"next": first}

        def producer():
            papi = Api(sluiced.http, timeout_s=10)
            n = first
            while not stop.is_set():
                ids = list(range(n, n + batch))
                n += batch
                records = [record(i, rng) for i in ids]
                if args.crash_source == "direct":
                    body = put_record_batch_body(name, records)
                else:
                    body = put_records_body("crashy-source", records)
                put.update(ids)
                try:
                    out = papi.call_raw(target, body)
                except Exception:
                    return  # sluiced was killed
                for i, resp in zip(ids, out[failed_field]):
                    if "RecordId" in resp or "SequenceNumber" in resp:
                        acked.add(i)
                state["next"] = n

        thread = threading.Thread(target=producer)
        thread.start()
        if round_number == args.kills:
            time.sleep(3)  # a last round, not killed: then everything is drained
            stop.set()
            thread.join()
            break
        # Kill once at least two buffers of this round are acknowledged and an object of this
        # round is in the bucket, after a random extra delay so the kill falls anywhere in the
        # seal / upload / checkpoint cycle.
        deadline = time.monotonic() + 120
        objects0 = reader.objects
        while True:
            read(round_number)
            if state["next"] - first >= 2048 and reader.objects > objects0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("crash: no delivery within 120 s")
            time.sleep(0.1)
        time.sleep(rng.uniform(0, 1.5))
        sluiced.kill()
        wall_kill = time.time()
        # How old the delivery stream's checkpoint was at the kill: what a restart re-delivers
        # is what was delivered since it was written.
        try:
            checkpoint_age_s = wall_kill - os.stat(f"{sluiced.workdir}/data/firehose/checkpoints/{name}.json").st_mtime
        except FileNotFoundError:
            checkpoint_age_s = None
        stop.set()
        thread.join()
        t_kill = time.monotonic()
        time.sleep(0.5)  # a PUT whose body was sent before the kill may still complete
        read(round_number)
        sluiced.start()
        per_round.append({"round": round_number, "put": state["next"] - first,
                          "restart_s": time.monotonic() - t_kill, "checkpoint_age_s": checkpoint_age_s})
        log(f"crash round {round_number + 1}/{args.kills}: killed after {state['next'] - first} records put, "
            f"restarted in {per_round[-1]['restart_s']:.1f} s; checkpoint written "
            + (f"{checkpoint_age_s:.2f} s before the kill" if checkpoint_age_s is not None else "never"))
    # Everything acknowledged must show up.
    deadline = time.monotonic() + 300
    while True:
        read(args.kills)
        missing = [n for n in acked if n not in reader.counts]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(3)
    read(args.kills)
    lost = len([n for n in acked if n not in reader.counts])
    never_put = len([n for n in reader.counts if n not in put])
    # duplicates[k]: extra copies written in life k + 1, i.e. caused by kill k + 1 (index k);
    # the last entry counts copies twice in one life (none expected: no crash between them).
    duplicates = {r: 0 for r in range(args.kills + 1)}
    for copies in lives.values():
        copies.sort()
        for earlier, later in zip(copies, copies[1:]):
            duplicates[later - 1 if later > earlier else args.kills] += 1
    extra = len([n for n in reader.counts if n not in acked])
    records_per_buffer = size_mib * 1024 * 1024 // RECORD_BYTES
    s = {"kills": args.kills, "acknowledged": len(acked), "delivered_distinct": len(reader.counts),
         "delivered_unacknowledged": extra, "lost": lost, "never_put_but_delivered": never_put,
         "duplicates_total": sum(duplicates.values()), "duplicates_per_kill": duplicates,
         "duplicates_max_per_crash": max(duplicates[k] for k in range(args.kills)), "objects": reader.objects,
         "buffer_records": records_per_buffer, "rounds": per_round}
    with open(f"{out_dir}/crash-{args.crash_source}-{size_mib}mib.json", "w") as f:
        json.dump(s, f, indent=1)
    source = "Direct PUT" if args.crash_source == "direct" else "KinesisStreamAsSource (2 shards)"
    table = [f"SIGKILL of sluiced during delivery: {args.kills} kills, {source} → SeaweedFS, GZIP, "
             f"buffer {size_mib} MiB ({records_per_buffer} records) / {interval_s} s",
             f"acknowledged {s['acknowledged']}, delivered {s['delivered_distinct']} distinct "
             f"({extra} of them put but unacknowledged at a kill), lost {lost}, never put {never_put}",
             f"duplicates {s['duplicates_total']} in all; per crash: "
             + " ".join(str(duplicates[r]) for r in range(args.kills)) + f" (twice within one life: "
             f"{duplicates[args.kills]}); max per crash {s['duplicates_max_per_crash']} = "
             f"{s['duplicates_max_per_crash'] / records_per_buffer:.2f} buffers"]
    return table


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sluiced", required=True)
    parser.add_argument("--weed", required=True)
    parser.add_argument("--work", required=True, help="scratch directory (removed by run.sh)")
    parser.add_argument("--out", required=True, help="results directory")
    parser.add_argument("--parts", default="throughput,freshness,crash")
    parser.add_argument("--configs", default="UNCOMPRESSED,GZIP,ZIP,Snappy,HADOOP_SNAPPY,CHANNEL_ZSTD,PARQUET,STREAM_SOURCE")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--mib", type=int, default=30, help="MiB of records per run (whole buffers)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent put connections")
    parser.add_argument("--buffer-mib", type=int, default=5)
    parser.add_argument("--interval-s", type=int, default=1)
    parser.add_argument("--fresh-rate", type=float, default=20)
    parser.add_argument("--fresh-s", type=float, default=30)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--crash-source", choices=["direct", "stream"], default="direct")
    parser.add_argument("--crash-buffer-mib", type=int, default=1)
    args = parser.parse_args()
    parts = args.parts.split(",")
    os.makedirs(args.out, exist_ok=True)
    files_dir = f"{args.work}/files"
    os.makedirs(files_dir, exist_ok=True)
    firehose_config = f"{args.work}/firehose.toml"
    s3 = SeaweedFS(args.weed, f"{args.work}/seaweedfs")
    with open(firehose_config, "w") as f:
        f.write(f'channel-data-freshness-ms = {args.interval_s * 1000}\n'
                f'[buckets.{BUCKET}]\nendpoint = "{s3.url}"\naccess-key-id = "{S3_KEY}"\n'
                f'secret-access-key = "{S3_SECRET}"\n[buckets.files]\ndir = "{files_dir}"\n')
    sluiced = None
    tables = []
    try:
        for part in parts:
            # Each part gets its own sluiced (fresh data directory), the SeaweedFS server stays.
            work = f"{args.work}/sluiced-{part}"
            os.makedirs(work, exist_ok=True)
            sluiced = Sluiced(args.sluiced, work, firehose_config)
            if part == "throughput":
                tables.append(throughput(args, sluiced, s3, args.out))
            elif part == "freshness":
                tables.append(freshness(args, sluiced, s3, files_dir, args.out))
            elif part == "crash":
                tables.append(crash(args, sluiced, s3, args.out))
            else:
                raise SystemExit(f"unknown part {part}")
            sluiced.stop()
            shutil.rmtree(work, ignore_errors=True)
            sluiced = None
    finally:
        if sluiced:
            sluiced.stop()
        s3.stop()
    for table in tables:
        print("\n".join(table))
        print()


if __name__ == "__main__":
    main()
