"""Reads a whole stream with the AWS Python SDK and deaggregates it with aws-kinesis-agg,
for server/tests/producer.rs: software nobody here wrote reading what our producer wrote.

    read_stream.py ENDPOINT_URL STREAM

Prints one JSON line per Kinesis record as boto3 returns it ({"kind": "kinesis", "shard",
"seq", "pk", "data"}) and one per user record aws-kinesis-agg finds in it ({"kind": "user",
"shard", "seq", "sub", "pk", "ehk", "data"}; "sub" is null for a record passed through).
Shards are read from TRIM_HORIZON until an empty answer with MillisBehindLatest 0 or the end.
"""
import base64
import json
import sys

import boto3
from aws_kinesis_agg.deaggregator import deaggregate_records


def main(endpoint_url, stream):
    client = boto3.client(
        "kinesis",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    shards = client.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        shard_id = shard["ShardId"]
        iterator = client.get_shard_iterator(
            StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = client.get_records(ShardIterator=iterator, Limit=10000)
            records = answer["Records"]
            for record in records:
                print(json.dumps({
                    "kind": "kinesis",
                    "shard": shard_id,
                    "seq": record["SequenceNumber"],
                    "pk": record["PartitionKey"],
                    "data": base64.b64encode(record["Data"]).decode("ascii"),
                }))
            # The Lambda-event shape aws-kinesis-agg's deaggregator takes: base64 data.
            events = [{"kinesis": {
                "kinesisSchemaVersion": "1.0",
                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                "partitionKey": r["PartitionKey"],
                "sequenceNumber": r["SequenceNumber"],
                "data": base64.b64encode(r["Data"]).decode("ascii"),
            }} for r in records]
            for user in deaggregate_records(events):
                k = user["kinesis"]
                print(json.dumps({
                    "kind": "user",
                    "shard": shard_id,
                    "seq": k["sequenceNumber"],
                    "sub": k.get("subSequenceNumber"),
                    "pk": k["partitionKey"],
                    "ehk": k.get("explicitHashKey"),
                    "data": k["data"].decode("ascii") if isinstance(k["data"], bytes) else k["data"],
                }))
            iterator = answer.get("NextShardIterator")
            if not records and answer.get("MillisBehindLatest", 0) == 0:
                break


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
