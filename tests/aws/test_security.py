"""boto3 and the AWS CLI against a real sluiced started with --credentials: SigV4 verified on
every request (AWS's errors for each bad credential), and the principals' IAM policies
evaluated per request (allow, explicit deny, implicit deny, resource ARN patterns).

One daemon for the module; each principal's policies are in the credentials file below.
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.auth
import botocore.exceptions
import signal
import httpx
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import Daemon

ACCOUNT = "000000000000"
REGION = "us-east-1"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
SESSION_TOKEN = "FwoGZXIvYXdzE//session+token="


def arn(stream):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}"


def user(name):
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


PRINCIPALS = {
    "admin": ("AKIAADMIN00000000001", "admin/secret+key", [
        policy({"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}),
    ]),
    # Reads streams whose names start with "orders-", and nothing else.
    "reader": ("AKIAREADER0000000001", "reader-secret", [
        policy({"Effect": "Allow",
                "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
                           "kinesis:ListShards"],
                "Resource": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/orders-*"}),
    ]),
    # Everything but deleting streams: an explicit deny beats the allow.
    "keeper": ("AKIAKEEPER0000000001", "keeper-secret", [
        policy({"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"},
               {"Effect": "Deny", "Action": "kinesis:DeleteStream", "Resource": "*"}),
    ]),
    # Lists, from loopback only (a condition on aws:SourceIp).
    "local": ("AKIALOCAL00000000001", "local-secret", [
        policy({"Effect": "Allow", "Action": "kinesis:List*", "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}),
    ]),
    # Describes the cluster (Sluice's admin service), and may do nothing else.
    "operator": ("AKIAOPERATOR00000001", "operator-secret", [
        policy({"Effect": "Allow", "Action": "sluice:DescribeCluster",
                "Resource": f"arn:aws:sluice:{REGION}:{ACCOUNT}:cluster"}),
    ]),
}


def credentials_file(directory):
    lines = [f'account_id = "{ACCOUNT}"']
    for name, (key, secret, policies) in PRINCIPALS.items():
        lines += ["", "[[principal]]", f'name = "{name}"', f'access_key_id = "{key}"',
                  f'secret_access_key = "{secret}"', "policies = [" + ", ".join(f"'''{p}'''" for p in policies) + "]"]
    lines += ["", "[[principal]]", 'name = "session"', 'access_key_id = "ASIASESSION000000001"',
              'secret_access_key = "session-secret"', f'session_token = "{SESSION_TOKEN}"',
              "policies = ['''" + PRINCIPALS["admin"][2][0] + "''']"]
    path = os.path.join(directory, "credentials.toml")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def secured():
    directory = tempfile.TemporaryDirectory(prefix="sluice-creds-")
    daemon = Daemon("unlimited", "--credentials", credentials_file(directory.name),
                    "--audit-dir", os.path.join(directory.name, "audit"))
    daemon.audit_log = os.path.join(directory.name, "audit", "audit.log")
    yield daemon
    daemon.stop()
    directory.cleanup()


def client(daemon, name=None, key=None, secret=None, token=None, **config):
    if name is not None:
        key, secret, _ = PRINCIPALS[name]
    settings = {"retries": {"total_max_attempts": 1}, "read_timeout": 30}
    settings.update(config)
    return boto3.client("kinesis", endpoint_url=daemon.endpoint, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=Config(**settings))


def refused(call, *args, **kwargs):
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def create(kinesis, name, shards=1):
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})


# ------------------------------------------------------------------------------------------------
# Authentication.

def test_the_right_keys_work(secured):
    admin = client(secured, "admin")
    create(admin, "auth-ok")
    admin.put_record(StreamName="auth-ok", Data=b"x", PartitionKey="k")
    assert "auth-ok" in admin.list_streams()["StreamNames"]


def test_a_session_token_is_required_and_checked(secured):
    key, secret = "ASIASESSION000000001", "session-secret"
    assert "StreamNames" in client(secured, key=key, secret=secret, token=SESSION_TOKEN).list_streams()
    assert refused(client(secured, key=key, secret=secret).list_streams) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.")
    assert refused(client(secured, key=key, secret=secret, token="other").list_streams) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.")


def test_a_wrong_secret_is_a_signature_mismatch(secured):
    key, _, _ = PRINCIPALS["admin"]
    assert refused(client(secured, key=key, secret="not-the-secret").list_streams) == (
        "InvalidSignatureException", MISMATCH)


def test_an_unknown_access_key_is_unrecognized(secured):
    assert refused(client(secured, key="AKIANOBODY0000000001", secret="x").list_streams) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.")


def test_a_missing_signature_is_a_missing_token(secured):
    unsigned = client(secured, key="x", secret="x", signature_version=UNSIGNED)
    assert refused(unsigned.list_streams) == ("MissingAuthenticationTokenException", "Missing Authentication Token")
    # Nothing ran: a delete without a signature leaves the stream.
    create(client(secured, "admin"), "auth-undeleted")
    assert refused(unsigned.delete_stream, StreamName="auth-undeleted")[0] == "MissingAuthenticationTokenException"
    assert client(secured, "admin").describe_stream_summary(StreamName="auth-undeleted")


@pytest.mark.parametrize("minutes,text", [(-6, "Signature expired: "), (6, "Signature not yet current: ")])
def test_a_skewed_clock_is_refused(secured, monkeypatch, minutes, text):
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    code, message = refused(client(secured, "admin").list_streams)
    assert code == "InvalidSignatureException"
    assert message.startswith(text + skewed.strftime("%Y%m%dT%H%M%SZ"))
    assert message.endswith(" 5 min.)")


def test_a_region_other_than_the_daemons_is_refused(secured):
    key, secret, _ = PRINCIPALS["admin"]
    other = boto3.client("kinesis", endpoint_url=secured.endpoint, region_name="eu-west-1", aws_access_key_id=key,
                         aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))
    assert refused(other.list_streams) == (
        "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'. ")


def presigned(daemon, name, target, expires=60):
    key, secret, _ = PRINCIPALS[name]
    request = AWSRequest(method="POST", url=daemon.endpoint + "/",
                         headers={"X-Amz-Target": f"Kinesis_20131202.{target}",
                                  "Content-Type": "application/x-amz-json-1.1"})
    SigV4QueryAuth(Credentials(key, secret), "kinesis", REGION, expires=expires).add_auth(request)
    return request


def test_a_presigned_url_works_until_it_expires(secured, monkeypatch):
    request = presigned(secured, "admin", "ListStreams")
    answer = httpx.post(request.url, headers=dict(request.headers), content=b"")
    assert answer.status_code == 200, answer.text
    assert "StreamNames" in answer.json()
    # Tampered with: the signature no longer matches.
    tampered = request.url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    answer = httpx.post(tampered, headers=dict(request.headers), content=b"")
    assert answer.json() == {"__type": "InvalidSignatureException", "message": MISMATCH}
    # Signed 2 minutes ago, valid for 1.
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=2)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    old = presigned(secured, "admin", "ListStreams")
    answer = httpx.post(old.url, headers=dict(old.headers), content=b"")
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidSignatureException"
    assert answer.json()["message"].startswith("Signature expired: " + past.strftime("%Y%m%dT%H%M%SZ"))
    assert answer.json()["message"].endswith(" - 60 sec.)")


def test_the_aws_cli_signs_and_is_verified(secured):
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    key, secret, _ = PRINCIPALS["admin"]
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION)
    environment.pop("AWS_SESSION_TOKEN", None)
    command = [cli, "kinesis", "list-streams", "--endpoint-url", secured.endpoint, "--output", "json"]
    listed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "StreamNames" in json.loads(listed.stdout)
    environment["AWS_SECRET_ACCESS_KEY"] = "wrong"
    refused_run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert refused_run.returncode != 0
    assert "InvalidSignatureException" in refused_run.stderr and "does not match" in refused_run.stderr


# ------------------------------------------------------------------------------------------------
# Authorization.

def admin_call(daemon, name, operation, body):
    """One call to Sluice's admin service, signed as principal `name`: (status, JSON answer)."""
    key, secret, _ = PRINCIPALS[name]
    request = AWSRequest(method="POST", url=daemon.endpoint + "/", data=json.dumps(body).encode(),
                         headers={"X-Amz-Target": f"SluiceAdmin_20261201.{operation}",
                                  "Content-Type": "application/x-amz-json-1.1"})
    botocore.auth.SigV4Auth(Credentials(key, secret), "kinesis", REGION).add_auth(request)
    answer = httpx.post(request.url, headers=dict(request.headers), content=request.body)
    return answer.status_code, answer.json()


def test_admin_calls_need_their_own_actions_which_kinesis_star_does_not_grant(secured):
    cluster = f"arn:aws:sluice:{REGION}:{ACCOUNT}:cluster"
    status, answer = admin_call(secured, "admin", "DescribeCluster", {})
    assert status == 400, answer
    assert (answer["__type"], answer["message"]) == denied("admin", "sluice:DescribeCluster", cluster)
    # Allowed: it runs, and a node alone answers that it is no cluster's member.
    status, answer = admin_call(secured, "operator", "DescribeCluster", {})
    assert (status, answer["__type"]) == (400, "InvalidArgumentException"), answer
    assert "not a member of a cluster" in answer["message"]
    replace = {"OldNodeId": 3, "NewNodeId": 4, "PeerAddress": "127.0.0.1:7400"}
    status, answer = admin_call(secured, "operator", "ReplaceClusterMember", replace)
    assert (answer["__type"], answer["message"]) == denied("operator", "sluice:ReplaceClusterMember", cluster)
    for operation, body in [("AddClusterMember", {"NewNodeId": 4, "PeerAddress": "127.0.0.1:7400"}),
                            ("RemoveClusterMember", {"OldNodeId": 3})]:
        status, answer = admin_call(secured, "operator", operation, body)
        assert (answer["__type"], answer["message"]) == denied("operator", f"sluice:{operation}", cluster)


def denied(name, action, resource, why="because no identity-based policy allows the {action} action"):
    return ("AccessDeniedException",
            f"User: {user(name)} is not authorized to perform: {action} on resource: {resource} "
            + why.format(action=action))


def test_a_reader_reads_its_streams_and_nothing_else(secured):
    admin, reader = client(secured, "admin"), client(secured, "reader")
    create(admin, "orders-1")
    create(admin, "payments-1")
    admin.put_record(StreamName="orders-1", Data=b"order", PartitionKey="k")
    admin.put_record(StreamName="payments-1", Data=b"payment", PartitionKey="k")
    # Allowed: every action of its policy on a stream its pattern matches.
    assert reader.describe_stream(StreamName="orders-1")["StreamDescription"]["StreamARN"] == arn("orders-1")
    shard = reader.list_shards(StreamName="orders-1")["Shards"][0]["ShardId"]
    iterator = reader.get_shard_iterator(StreamName="orders-1", ShardId=shard,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in reader.get_records(ShardIterator=iterator)["Records"]] == [b"order"]
    # Implicitly denied: an action its policy does not list, on its own stream.
    assert refused(reader.put_record, StreamName="orders-1", Data=b"x", PartitionKey="k") == denied(
        "reader", "kinesis:PutRecord", arn("orders-1"))
    assert refused(reader.delete_stream, StreamName="orders-1") == denied(
        "reader", "kinesis:DeleteStream", arn("orders-1"))
    # Implicitly denied: a listed action on a stream the pattern does not match.
    assert refused(reader.describe_stream, StreamName="payments-1") == denied(
        "reader", "kinesis:DescribeStream", arn("payments-1"))
    # An action with no resource (`*`) that the policy does not grant.
    assert refused(reader.list_streams) == denied("reader", "kinesis:ListStreams", "*")
    # Allowed, so the operation itself answers: the stream does not exist.
    assert refused(reader.describe_stream, StreamName="orders-none")[0] == "ResourceNotFoundException"
    # GetRecords names its stream only through the iterator: an iterator of another stream,
    # handed over by someone allowed to read it, is refused for that stream.
    other = admin.get_shard_iterator(StreamName="payments-1", ShardId=shard,
                                     ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert refused(reader.get_records, ShardIterator=other) == denied(
        "reader", "kinesis:GetRecords", arn("payments-1"))
    assert [r["Data"] for r in admin.get_records(ShardIterator=other)["Records"]] == [b"payment"]


def test_a_list_shards_continuation_is_checked_against_its_stream(secured):
    admin, reader = client(secured, "admin"), client(secured, "reader")
    create(admin, "orders-paged", shards=3)
    create(admin, "payments-paged", shards=3)
    first = reader.list_shards(StreamName="orders-paged", MaxResults=1)
    assert len(first["Shards"]) == 1
    assert len(reader.list_shards(NextToken=first["NextToken"])["Shards"]) == 2
    token = admin.list_shards(StreamName="payments-paged", MaxResults=1)["NextToken"]
    assert refused(reader.list_shards, NextToken=token) == denied(
        "reader", "kinesis:ListShards", arn("payments-paged"))


def test_an_explicit_deny_beats_an_allow(secured):
    keeper = client(secured, "keeper")
    create(keeper, "kept")
    keeper.put_record(StreamName="kept", Data=b"x", PartitionKey="k")
    assert refused(keeper.delete_stream, StreamName="kept") == denied(
        "keeper", "kinesis:DeleteStream", arn("kept"), "with an explicit deny in an identity-based policy")
    assert keeper.describe_stream_summary(StreamName="kept")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_conditions_see_the_source_address(secured):
    local = client(secured, "local")
    assert "StreamNames" in local.list_streams()
    assert refused(local.describe_limits) == denied("local", "kinesis:DescribeLimits", "*")


def test_denials_are_answered_in_cbor_too(secured):
    # botocore speaks JSON to Kinesis; the same refusal in the Java SDKs' CBOR is checked by
    # signing a CBOR request by hand.
    key, secret, _ = PRINCIPALS["reader"]
    request = AWSRequest(method="POST", url=secured.endpoint + "/", data=b"\xa0",
                         headers={"X-Amz-Target": "Kinesis_20131202.ListStreams",
                                  "Content-Type": "application/x-amz-cbor-1.1"})
    botocore.auth.SigV4Auth(Credentials(key, secret), "kinesis", REGION).add_auth(request)
    answer = httpx.post(request.url, headers=dict(request.headers), content=b"\xa0")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/x-amz-cbor-1.1"
    assert b"AccessDeniedException" in answer.content


# ------------------------------------------------------------------------------------------------
# Resource policies (PutResourcePolicy and its siblings), evaluated with the identity policies.

def test_a_resource_policy_grants_and_denies_on_its_stream_and_consumer(secured):
    admin, reader, keeper = client(secured, "admin"), client(secured, "reader"), client(secured, "keeper")
    create(admin, "orders-shared")
    stream = arn("orders-shared")
    # Without a resource policy: GetResourcePolicy answers an empty document, and the reader's
    # identity policy does not grant PutRecord.
    assert admin.get_resource_policy(ResourceARN=stream)["Policy"] == "{}"
    assert refused(reader.put_record, StreamName="orders-shared", Data=b"x", PartitionKey="k") == denied(
        "reader", "kinesis:PutRecord", stream)
    # The stream's policy grants the reader PutRecord, and denies the keeper (whose identity
    # policy allows everything) PutRecord: an explicit deny in either policy wins.
    document = policy(
        {"Effect": "Allow", "Principal": {"AWS": user("reader")}, "Action": "kinesis:PutRecord", "Resource": stream},
        {"Effect": "Deny", "Principal": {"AWS": user("keeper")}, "Action": "kinesis:PutRecord", "Resource": stream})
    admin.put_resource_policy(ResourceARN=stream, Policy=document)
    assert admin.get_resource_policy(ResourceARN=stream)["Policy"] == document
    reader.put_record(StreamName="orders-shared", Data=b"granted", PartitionKey="k")
    assert refused(keeper.put_record, StreamName="orders-shared", Data=b"x", PartitionKey="k") == denied(
        "keeper", "kinesis:PutRecord", stream, "with an explicit deny in a resource-based policy")
    admin.put_record(StreamName="orders-shared", Data=b"admin", PartitionKey="k")
    # Only what the policy names: PutRecords is still the reader's to be refused, and the reader
    # may not manage the policy itself.
    assert refused(reader.put_records, StreamName="orders-shared",
                   Records=[{"Data": b"x", "PartitionKey": "k"}])[0] == "AccessDeniedException"
    assert refused(reader.delete_resource_policy, ResourceARN=stream) == denied(
        "reader", "kinesis:DeleteResourcePolicy", stream)
    # A consumer has a policy of its own.
    consumer = admin.register_stream_consumer(StreamARN=stream, ConsumerName="c")["Consumer"]["ConsumerARN"]
    assert refused(reader.describe_stream_consumer, ConsumerARN=consumer)[0] == "AccessDeniedException"
    admin.put_resource_policy(ResourceARN=consumer, Policy=policy(
        {"Effect": "Allow", "Principal": {"AWS": user("reader")}, "Action": "kinesis:DescribeStreamConsumer",
         "Resource": consumer}))
    assert reader.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerName"] == "c"
    # Deleted: the grant is gone (and deleting again changes nothing).
    admin.delete_resource_policy(ResourceARN=stream)
    admin.delete_resource_policy(ResourceARN=stream)
    assert admin.get_resource_policy(ResourceARN=stream)["Policy"] == "{}"
    assert refused(reader.put_record, StreamName="orders-shared", Data=b"x", PartitionKey="k")[0] == (
        "AccessDeniedException")
    keeper.put_record(StreamName="orders-shared", Data=b"allowed again", PartitionKey="k")


def test_a_bad_resource_policy_or_resource_is_refused(secured):
    admin = client(secured, "admin")
    create(admin, "orders-policy-errors")
    stream = arn("orders-policy-errors")
    code, message = refused(admin.put_resource_policy, ResourceARN=stream, Policy="{not json")
    assert code == "InvalidArgumentException" and message.startswith("Invalid resource policy: "), message
    # A resource policy must name its principals.
    code, _ = refused(admin.put_resource_policy, ResourceARN=stream,
                      Policy=policy({"Effect": "Allow", "Action": "kinesis:*", "Resource": stream}))
    assert code == "InvalidArgumentException"
    good = policy({"Effect": "Allow", "Principal": {"AWS": user("reader")}, "Action": "kinesis:PutRecord"})
    assert refused(admin.put_resource_policy, ResourceARN=arn("orders-none"), Policy=good)[0] == (
        "ResourceNotFoundException")
    assert refused(admin.get_resource_policy, ResourceARN=arn("orders-none"))[0] == "ResourceNotFoundException"
    assert refused(admin.put_resource_policy, ResourceARN="arn:aws:kinesis:us-east-1:000000000000:nothing/x",
                   Policy=good)[0] in ("InvalidArgumentException", "ValidationException")
    # Nothing was stored by the refusals.
    assert admin.get_resource_policy(ResourceARN=stream)["Policy"] == "{}"



# ------------------------------------------------------------------------------------------------
# The audit log.

def audit_event(daemon, request_id):
    """The audit log's event for one request id; the writer thread appends within moments."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(daemon.audit_log) as log:
            for line in log:
                event = json.loads(line)
                if event.get("requestID") == request_id:
                    return event
        time.sleep(0.05)
    raise AssertionError(f"no audit event for request {request_id}")


def request_id_of_refusal(call, *args, **kwargs):
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["ResponseMetadata"]["RequestId"], raised.value.response["Error"]


def test_every_authenticated_call_is_audited(secured):
    admin, keeper = client(secured, "admin"), client(secured, "keeper")
    created = admin.create_stream(StreamName="audited", ShardCount=1)
    event = audit_event(secured, created["ResponseMetadata"]["RequestId"])
    assert event["eventName"] == "CreateStream" and event["eventSource"] == "kinesis.amazonaws.com"
    assert event["eventVersion"] == "1.08" and event["awsRegion"] == REGION
    assert event["userIdentity"]["arn"] == user("admin")
    assert event["userIdentity"]["accessKeyId"] == PRINCIPALS["admin"][0]
    assert event["userIdentity"]["type"] == "IAMUser"
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["requestParameters"] == {"StreamName": "audited", "ShardCount": 1}
    assert event["readOnly"] is False and "errorCode" not in event
    assert "Boto3" in event["userAgent"] or "botocore" in event["userAgent"]
    admin.get_waiter("stream_exists").wait(StreamName="audited", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    # Record data never reaches the log.
    put = admin.put_record(StreamName="audited", Data=b"secret-record-bytes", PartitionKey="pk")
    event = audit_event(secured, put["ResponseMetadata"]["RequestId"])
    assert event["requestParameters"] == {"StreamName": "audited", "StreamARN": None, "PartitionKey": "pk",
                                          "Data": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    # A denied call, with AWS's error.
    request_id, error = request_id_of_refusal(keeper.delete_stream, StreamName="audited")
    event = audit_event(secured, request_id)
    assert event["eventName"] == "DeleteStream" and event["userIdentity"]["arn"] == user("keeper")
    assert (event["errorCode"], event["errorMessage"]) == (error["Code"], error["Message"])
    # A refused signature: no principal, the key it claimed.
    wrong = client(secured, key=PRINCIPALS["admin"][0], secret="wrong")
    request_id, error = request_id_of_refusal(wrong.list_streams)
    event = audit_event(secured, request_id)
    assert event["errorCode"] == "InvalidSignatureException"
    assert event["userIdentity"]["accessKeyId"] == PRINCIPALS["admin"][0]
    assert event["userIdentity"]["arn"] == ""
    with open(secured.audit_log) as log:
        text = log.read()
    assert "secret-record-bytes" not in text and "c2VjcmV0LXJlY29yZC1ieXRlcw" not in text


# ------------------------------------------------------------------------------------------------
# TLS on the HTTP listener.

def make_ca(directory, name):
    """A CA and a certificate for localhost and 127.0.0.1 signed by it, with openssl."""
    def run(*command):
        subprocess.run(command, cwd=directory, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-subj", f"/CN={name} test CA", "-days", "2")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost")
    with open(os.path.join(directory, f"{name}.ext"), "w") as file:
        file.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n")
    run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return (os.path.join(directory, f"{name}-ca.pem"), os.path.join(directory, f"{name}.pem"),
            os.path.join(directory, f"{name}.key"))


@pytest.fixture(scope="module")
def tls_daemon():
    directory = tempfile.TemporaryDirectory(prefix="sluice-tls-")
    ca, cert, key = make_ca(directory.name, "first")
    live_cert, live_key = os.path.join(directory.name, "live.pem"), os.path.join(directory.name, "live.key")
    for source, target in ((cert, live_cert), (key, live_key)):
        with open(source, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
    daemon = Daemon("unlimited", "--credentials", credentials_file(directory.name),
                    "--tls-cert", live_cert, "--tls-key", live_key)
    daemon.tls = {"dir": directory.name, "ca": ca, "cert": live_cert, "key": live_key}
    yield daemon
    daemon.stop()
    directory.cleanup()


def tls_client(daemon, name, verify, host="localhost"):
    key, secret, _ = PRINCIPALS[name]
    return boto3.client("kinesis", endpoint_url=f"https://{host}:{daemon.http_port}", region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret, verify=verify,
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=30))


def test_boto3_over_https_with_the_test_ca(tls_daemon):
    admin = tls_client(tls_daemon, "admin", tls_daemon.tls["ca"])
    create(admin, "tls-stream")
    admin.put_record(StreamName="tls-stream", Data=b"over tls", PartitionKey="k")
    shard = admin.list_shards(StreamName="tls-stream")["Shards"][0]["ShardId"]
    iterator = admin.get_shard_iterator(StreamName="tls-stream", ShardId=shard,
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in admin.get_records(ShardIterator=iterator)["Records"]] == [b"over tls"]
    # By IP address too (the certificate names 127.0.0.1).
    assert "StreamNames" in tls_client(tls_daemon, "admin", tls_daemon.tls["ca"], "127.0.0.1").list_streams()
    # Policies and signatures apply over TLS as over plain HTTP.
    assert refused(tls_client(tls_daemon, "reader", tls_daemon.tls["ca"]).list_streams)[0] == "AccessDeniedException"


def test_subscribe_to_shard_and_the_aws_cli_over_https(tls_daemon):
    admin = tls_client(tls_daemon, "admin", tls_daemon.tls["ca"])
    create(admin, "tls-efo")
    put = admin.put_record(StreamName="tls-efo", Data=b"pushed over tls", PartitionKey="k")
    arn = admin.describe_stream_summary(StreamName="tls-efo")["StreamDescriptionSummary"]["StreamARN"]
    consumer = admin.register_stream_consumer(StreamARN=arn, ConsumerName="tls")["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 10
    while admin.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    subscription = admin.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                            StartingPosition={"Type": "TRIM_HORIZON"})
    event = next(iter(subscription["EventStream"]))["SubscribeToShardEvent"]
    assert [(r["SequenceNumber"], r["Data"]) for r in event["Records"]] == [(put["SequenceNumber"], b"pushed over tls")]
    subscription["EventStream"].close()

    # The AWS CLI with --ca-bundle, signed and verified over TLS; without the bundle it refuses.
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    key, secret, _ = PRINCIPALS["admin"]
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION)
    environment.pop("AWS_SESSION_TOKEN", None)
    command = [cli, "kinesis", "list-streams", "--endpoint-url", f"https://localhost:{tls_daemon.http_port}",
               "--output", "json", "--cli-read-timeout", "30"]
    listed = subprocess.run(command + ["--ca-bundle", tls_daemon.tls["ca"]], env=environment, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "tls-efo" in json.loads(listed.stdout)["StreamNames"]
    distrusting = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert distrusting.returncode != 0 and "SSL" in distrusting.stderr, distrusting.stderr


def test_a_client_not_trusting_the_ca_or_speaking_plain_http_gets_nothing(tls_daemon):
    with pytest.raises(botocore.exceptions.SSLError):
        tls_client(tls_daemon, "admin", True).list_streams()
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"http://127.0.0.1:{tls_daemon.http_port}/", content=b"{}", timeout=5)


def test_sighup_reloads_the_certificate(tls_daemon):
    second_ca, second_cert, second_key = make_ca(tls_daemon.tls["dir"], "second")
    for source, target in ((second_cert, tls_daemon.tls["cert"]), (second_key, tls_daemon.tls["key"])):
        with open(source, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
    tls_daemon.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert "StreamNames" in tls_client(tls_daemon, "admin", second_ca).list_streams()
            break
        except botocore.exceptions.SSLError:
            assert time.monotonic() < deadline, "the new certificate was not served after SIGHUP"
            time.sleep(0.1)
    with pytest.raises(botocore.exceptions.SSLError):
        tls_client(tls_daemon, "admin", tls_daemon.tls["ca"]).list_streams()
    # A reload that fails (a key that does not match) keeps the certificate being served.
    with open(tls_daemon.tls["key"], "wb") as file:
        file.write(b"not a key")
    tls_daemon.process.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert tls_daemon.process.poll() is None
    assert "StreamNames" in tls_client(tls_daemon, "admin", second_ca).list_streams()
