#!/usr/bin/env python3
"""Extracts the request shapes of the operations Sluice serves over HTTP from botocore's
Kinesis service model into protocol/src/aws/kinesis-model.json, which the AWS codec embeds to
type-check and validate requests exactly as the model says (SerializationException for a wrong
type, ValidationException for a missing member or a broken constraint).

Usage: scripts/kinesis-model.py [--check]   (run with the venv's python: botocore comes from
tests/aws/requirements.txt). --check fails if the committed file differs from what the
installed botocore gives: the model moved, so re-run without --check and review the diff.
"""
import gzip
import json
import os
import sys

import botocore

# Keep in step with the operations! list in model/src/operations.rs (a test of
# protocol/src/aws/shapes.rs checks that the file holds exactly those operations).
OPERATIONS = [
    "AddTagsToStream", "CreateStream", "DecreaseStreamRetentionPeriod", "DeleteStream",
    "DeregisterStreamConsumer", "DescribeAccountSettings", "DescribeLimits", "DescribeStream",
    "DescribeStreamConsumer", "DescribeStreamSummary", "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring", "GetRecords", "GetShardIterator", "IncreaseStreamRetentionPeriod",
    "ListShards", "ListStreamConsumers", "ListStreams", "ListTagsForResource", "ListTagsForStream",
    "MergeShards", "PutRecord", "PutRecords", "RegisterStreamConsumer", "RemoveTagsFromStream",
    "SplitShard", "SubscribeToShard", "TagResource", "UntagResource", "UpdateShardCount",
    "UpdateStreamMode", "StartStreamEncryption", "StopStreamEncryption",
    # Kinesis queues (model/src/queues.rs).
    "AcknowledgeDeadLetterQueueRecords", "AcknowledgeQueueRecords", "CreateQueue", "DeleteQueue",
    "DescribeQueue", "ListQueues", "ReceiveDeadLetterQueueRecords", "ReceiveQueueRecords",
    "RestoreDeadLetterQueueRecords", "UpdateDeadLetterQueueRecordsVisibility", "UpdateQueue",
    "UpdateQueueRecordsVisibility",
    # Resource policies (server/src/ops/consumers.rs).
    "DeleteResourcePolicy", "GetResourcePolicy", "PutResourcePolicy",
    # Stream and account settings (model/src/settings.rs).
    "UpdateAccountSettings", "UpdateMaxRecordSize", "UpdateStreamRecordDistributionStrategy",
    "UpdateStreamWarmThroughput",
]
KEPT = ("type", "required", "members", "member", "key", "value", "min", "max", "pattern", "enum")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.path.join(root, "protocol", "src", "aws", "kinesis-model.json")
source = os.path.join(os.path.dirname(botocore.__file__), "data", "kinesis", "2013-12-02", "service-2.json.gz")
with gzip.open(source) as f:
    model = json.load(f)

shapes = {}


def keep(name):
    if name in shapes:
        return
    shape = model["shapes"][name]
    kept = {k: v for k, v in shape.items() if k in KEPT}
    if "members" in kept:
        # A list, not an object: validation messages follow the model's member order.
        kept["members"] = [[m, v["shape"]] for m, v in kept["members"].items()]
    for k in ("member", "key", "value"):
        if k in kept:
            kept[k] = {"shape": kept[k]["shape"]}
    shapes[name] = kept
    for _, child in kept.get("members", []):
        keep(child)
    for k in ("member", "key", "value"):
        if k in kept:
            keep(kept[k]["shape"])


operations = {}
for op in OPERATIONS:
    spec = model["operations"][op]
    shape = spec["input"]["shape"]
    operations[op] = shape
    keep(shape)

document = {
    "source": f"botocore {botocore.__version__} data/kinesis/2013-12-02/service-2.json.gz "
    "(Apache-2.0); request shapes only, documentation removed",
    "operations": operations,
    "shapes": dict(sorted(shapes.items())),
}
text = json.dumps(document, indent=1, sort_keys=False) + "\n"
if "--check" in sys.argv:
    with open(target) as f:
        committed = json.load(f)
    committed.pop("source", None)
    document.pop("source")
    if committed != document:
        sys.exit(f"{target} is stale against botocore {botocore.__version__}: run scripts/kinesis-model.py")
    print(f"kinesis-model.json matches botocore {botocore.__version__}")
else:
    with open(target, "w") as f:
        f.write(text)
    print(f"wrote {target}: {len(operations)} operations, {len(shapes)} shapes")
