"""A Kinesis stream delivered to S3 as Parquet by Amazon Data Firehose, written as an AWS user
writes it for AWS: a Glue table holds the schema, Firehose reads the stream, converts the JSON
records to Parquet with that table's columns and writes them under hourly prefixes; the script
puts records and reads every object back with pyarrow.

It runs unchanged against AWS. Against Sluice the only differences are the environment:
SLUICE_ENDPOINT (the endpoint_url of the glue, kinesis and firehose clients), S3_ENDPOINT (the
S3 server's) and dummy credentials. server/tests/firehose.rs runs it
(`aws_firehose_script_with_a_glue_table_writes_parquet_under_hourly_prefixes`).

Usage: python aws_parquet_script.py BUCKET ROLE_ARN
Prints one JSON line: what it checked. Exits non-zero if a record is lost, duplicated,
mis-converted, or an object is not under its hourly prefix.
"""
import base64
import datetime
import io
import json
import os
import re
import sys
import time

import boto3
import pyarrow.parquet as pq

bucket, role_arn = sys.argv[1], sys.argv[2]
region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
endpoint = os.environ.get("SLUICE_ENDPOINT")  # None on AWS: the service's own endpoint
s3_endpoint = os.environ.get("S3_ENDPOINT")

glue = boto3.client("glue", region_name=region, endpoint_url=endpoint)
kinesis = boto3.client("kinesis", region_name=region, endpoint_url=endpoint)
firehose = boto3.client("firehose", region_name=region, endpoint_url=endpoint)
s3 = boto3.client("s3", region_name=region, endpoint_url=s3_endpoint)

DATABASE = "analytics"
TABLE = "orders"
STREAM = "orders"
DELIVERY_STREAM = "orders-to-parquet"
RECORDS = 1000
DEADLINE_S = 120

# The schema, in the Glue Data Catalog (Hive types), as the Glue console or a crawler makes it.
glue.create_database(DatabaseInput={"Name": DATABASE, "Description": "Firehose Parquet output"})
glue.create_table(
    DatabaseName=DATABASE,
    TableInput={
        "Name": TABLE,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {
            "Columns": [
                {"Name": "order_id", "Type": "bigint"},
                {"Name": "customer", "Type": "string", "Comment": "who ordered"},
                {"Name": "amount", "Type": "double"},
                {"Name": "quantity", "Type": "int"},
                {"Name": "paid", "Type": "boolean"},
                {"Name": "ordered_at", "Type": "timestamp"},
            ],
            "Location": "s3://%s/orders/" % bucket,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    },
)
table = glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]
assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]][0] == "order_id", table

kinesis.create_stream(StreamName=STREAM, ShardCount=2)
kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
stream_arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]

firehose.create_delivery_stream(
    DeliveryStreamName=DELIVERY_STREAM,
    DeliveryStreamType="KinesisStreamAsSource",
    KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role_arn},
    ExtendedS3DestinationConfiguration={
        "RoleARN": role_arn,
        "BucketARN": "arn:aws:s3:::" + bucket,
        "Prefix": "orders/!{timestamp:yyyy/MM/dd/HH}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
        # Format conversion needs at least 64 MiB; 0 s is the shortest interval AWS accepts.
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0},
        "DataFormatConversionConfiguration": {
            "Enabled": True,
            "SchemaConfiguration": {
                "DatabaseName": DATABASE,
                "TableName": TABLE,
                "RoleARN": role_arn,
                "Region": region,
                "VersionId": "LATEST",
            },
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
        },
    },
)
deadline = time.time() + DEADLINE_S
while firehose.describe_delivery_stream(DeliveryStreamName=DELIVERY_STREAM)["DeliveryStreamDescription"][
    "DeliveryStreamStatus"
] != "ACTIVE":
    assert time.time() < deadline, "the delivery stream did not become ACTIVE"
    time.sleep(1)


def order(i):
    return {
        "order_id": i,
        "Customer": "customer-%d" % (i % 37),  # OpenX JSON SerDe: keys match case-insensitively
        "amount": i * 1.25,
        "quantity": i % 10,
        "paid": i % 2 == 0,
        "ordered_at": "2026-12-02T10:%02d:%02d.123Z" % (i // 60 % 60, i % 60),
    }


hours = set()
hours.add(datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d/%H"))
for start in range(0, RECORDS, 250):
    records = [{"Data": json.dumps(order(i)).encode(), "PartitionKey": str(i)} for i in range(start, start + 250)]
    response = kinesis.put_records(StreamName=STREAM, Records=records)
    assert response["FailedRecordCount"] == 0, response
# A record that does not fit the table: AWS writes it under the error output prefix.
bad = json.dumps({"order_id": "not a number", "customer": "nobody"}).encode()
kinesis.put_record(StreamName=STREAM, Data=bad, PartitionKey="bad")
hours.add(datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d/%H"))


def objects(prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def read_rows():
    rows = []
    for key in objects("orders/"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows += [(key, row) for row in pq.read_table(io.BytesIO(body)).to_pylist()]
    return rows


rows = read_rows()
while len(rows) < RECORDS or not objects("errors/"):
    assert time.time() < deadline, "only %d of %d records delivered" % (len(rows), RECORDS)
    time.sleep(1)
    rows = read_rows()
time.sleep(2)  # anything delivered twice would show now
rows = read_rows()

# Every object under the default hourly layout, named as Firehose names them.
name = re.compile(
    r"orders/(\d{4}/\d{2}/\d{2}/\d{2})/%s-\d+-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]+\.parquet$"
    % re.escape(DELIVERY_STREAM)
)
keys = sorted({key for key, _ in rows})
for key in keys:
    match = name.match(key)
    assert match, "object key %r is not Firehose's hourly layout" % key
    assert match.group(1) in hours, "object %r is not under the hour of its records (%s)" % (key, sorted(hours))

# Every record once, with its column values converted to the table's types.
by_id = {}
for key, row in rows:
    assert row["order_id"] not in by_id, "record %s delivered twice" % row["order_id"]
    by_id[row["order_id"]] = row
assert sorted(by_id) == list(range(RECORDS)), "records lost: %s" % sorted(set(range(RECORDS)) - set(by_id))[:10]
for i, row in by_id.items():
    want = order(i)
    assert row["customer"] == want["Customer"], row
    assert row["amount"] == want["amount"], row
    assert row["quantity"] == want["quantity"], row
    assert row["paid"] is want["paid"], row
    at = row["ordered_at"]
    assert at.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (at.microsecond // 1000) == want["ordered_at"], row

# The record that did not fit, once, in AWS's error document.
errors = []
for key in objects("errors/"):
    assert key.startswith("errors/format-conversion-failed/"), key
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    errors += [json.loads(line) for line in body.splitlines() if line]
assert len(errors) == 1, errors
assert base64.b64decode(errors[0]["rawData"]) == bad, errors
assert errors[0]["errorCode"].startswith("DataFormatConversion."), errors

firehose.delete_delivery_stream(DeliveryStreamName=DELIVERY_STREAM)
kinesis.delete_stream(StreamName=STREAM)
glue.delete_table(DatabaseName=DATABASE, Name=TABLE)
glue.delete_database(Name=DATABASE)
print(json.dumps({"records": len(by_id), "objects": len(keys), "errors": len(errors), "error_code": errors[0]["errorCode"]}))
sys.stdout.flush()
# pyarrow's threads can hold the interpreter's exit (see the other pyarrow scripts).
os._exit(0)
