"""Every operation of the pinned botocore Kinesis model (tests/aws/requirements.txt) is either
served by Sluice or on the explicit, justified NOT_YET list below: a botocore bump that adds an
operation fails here until the operation is served or listed with its reason.

"Served" is what the HTTP codec embeds (protocol/src/aws/kinesis-model.json, written by
scripts/kinesis-model.py from the same model) plus the channel operations (CHANNELS), and the daemon is asked too: every served
operation answers something other than UnknownOperationException, every listed one answers
exactly that. docs/http.md lists the same table for readers."""
import gzip
import json
import os

import botocore
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Operation -> why it is not served yet. Keep docs/http.md's "Not implemented yet" in step.
# Empty since every operation of botocore 1.44.5's model is served; a newer model's new
# operation goes here, with its reason, until it is.
NOT_YET: dict[str, str] = {}


def pinned_model():
    path = os.path.join(os.path.dirname(botocore.__file__), "data", "kinesis", "2013-12-02", "service-2.json.gz")
    with gzip.open(path) as f:
        return json.load(f)


# Served outside the Kinesis codec: the channel operations run on the delivery engine, whose
# crate has their shapes (server/src/net/http/channels.rs; cargo feature `firehose`, on by default).
CHANNELS = {"CreateChannel", "DeleteChannel", "DescribeChannel", "ListChannels", "UpdateChannel"}


def served():
    with open(os.path.join(ROOT, "protocol", "src", "aws", "kinesis-model.json")) as f:
        return set(json.load(f)["operations"]) | CHANNELS


def test_every_model_operation_is_served_or_listed_with_a_reason():
    operations = set(pinned_model()["operations"])
    listed = set(NOT_YET)
    assert served() & listed == set(), "served and listed as not yet"
    assert operations - served() - listed == set(), "model operations neither served nor on NOT_YET"
    assert listed - operations == set(), "NOT_YET names operations the model does not have"
    assert served() - operations == set(), "served operations the pinned model does not have"
    assert all(reason.strip() for reason in NOT_YET.values())


def test_the_daemon_answers_as_the_lists_say(unlimited_daemon):
    credentials = Credentials("sluice", "sluice")
    for operation in sorted(pinned_model()["operations"]):
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Kinesis_20131202.{operation}"}
        request = AWSRequest(method="POST", url=unlimited_daemon.endpoint + "/", data=b"{}", headers=headers)
        SigV4Auth(credentials, "kinesis", "us-east-1").add_auth(request)
        if operation == "SubscribeToShard":
            continue  # an event stream; served (tests/aws/test_boto3.py subscribes)
        response = httpx.post(unlimited_daemon.endpoint + "/", content=b"{}",
                              headers=dict(request.headers.items()), timeout=30)
        kind = response.json().get("__type") if response.status_code != 200 else None
        if operation in NOT_YET:
            assert kind == "UnknownOperationException", (operation, response.status_code, kind)
        else:
            assert kind != "UnknownOperationException", operation
