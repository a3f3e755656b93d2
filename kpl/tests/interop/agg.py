"""aws-kinesis-agg (PyPI, 1.2.3) driven from kpl/tests/interop.rs over JSON lines.

    agg.py aggregate MAX_SIZE    user records in, aggregated Kinesis records out
    agg.py aggregate-each        a JSON list of user records per line in, one aggregate each out
    agg.py deaggregate           Kinesis records in, user records out

A user record is {"pk": str, "ehk": str or null, "data": base64}. A Kinesis record is the
same plus "seq" (its sequence number). Deaggregated records carry "sub" (the sub-sequence
number, null for a record passed through) and "aggregated".
"""
import base64
import contextlib
import io
import json
import sys

from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records


def b64(data):
    return base64.b64encode(data).decode("ascii")


def aggregate(max_size):
    aggregator = RecordAggregator(max_size=max_size)
    out = []

    def emit(agg_record):
        if agg_record is not None:
            pk, ehk, data = agg_record.get_contents()
            out.append({"pk": pk, "ehk": ehk, "data": b64(data), "count": agg_record.get_num_user_records()})

    for line in sys.stdin:
        record = json.loads(line)
        emit(aggregator.add_user_record(record["pk"], base64.b64decode(record["data"]), record["ehk"]))
    emit(aggregator.clear_and_get())
    for record in out:
        print(json.dumps(record))


def aggregate_each():
    for line in sys.stdin:
        aggregator = RecordAggregator()
        for record in json.loads(line):
            full = aggregator.add_user_record(record["pk"], base64.b64decode(record["data"]), record["ehk"])
            assert full is None, "one line must fit one aggregate"
        pk, ehk, data = aggregator.clear_and_get().get_contents()
        print(json.dumps({"pk": pk, "ehk": ehk, "data": b64(data)}))


def deaggregate():
    for line in sys.stdin:
        record = json.loads(line)
        lambda_record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "sequenceNumber": record["seq"],
                "partitionKey": record["pk"],
                "approximateArrivalTimestamp": 0,
                "data": record["data"],
            }
        }
        # The library prints sub-record errors to stderr after yielding the records before
        # the bad one; keep its words for the test's messages.
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            users = list(iter_deaggregate_records([lambda_record]))
        for user in users:
            k = user["kinesis"]
            print(json.dumps({
                "seq": k["sequenceNumber"],
                "pk": k["partitionKey"],
                "ehk": k.get("explicitHashKey"),
                "data": k["data"] if isinstance(k["data"], str) else k["data"].decode("ascii"),
                "sub": k.get("subSequenceNumber"),
                "aggregated": bool(k.get("aggregated", False)),
                "error": bool(errors.getvalue()),
            }))
        if not users:
            print(json.dumps({"seq": record["seq"], "empty": True, "error": bool(errors.getvalue())}))


if __name__ == "__main__":
    if sys.argv[1] == "aggregate":
        aggregate(int(sys.argv[2]))
    elif sys.argv[1] == "aggregate-each":
        aggregate_each()
    elif sys.argv[1] == "deaggregate":
        deaggregate()
    else:
        sys.exit("usage: agg.py aggregate MAX_SIZE | aggregate-each | deaggregate")
