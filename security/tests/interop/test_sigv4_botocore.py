"""SigV4 interop between botocore and sluice-security's signer and verifier.

botocore (the AWS SDK for Python's core, from PyPI) signs real requests: the Kinesis client's
own calls as boto3 sends them, and hand-built requests with odd paths, queries and repeated
headers, by header and as presigned URLs. The Rust verifier (driven through the
`sigv4_interop` example, one JSON line per request) must accept each and refuse each altered
copy with InvalidSignatureException. The other way, the Rust signer's Authorization header and
presigned signature must equal what botocore's SigV4Auth computes for the same input.

Run with the venv of tests/aws/setup.sh:  .venv/bin/python -m pytest security/tests/interop
The Rust program is built with cargo if SLUICE_SIGV4_INTEROP does not name it.
"""
import base64
import datetime
import json
import os
import subprocess
import urllib.parse

import boto3
import botocore.auth
import botocore.config
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# The credentials the interop program knows (examples/sigv4_interop.rs).
INTEROP = Credentials("AKIDINTEROP", "interop/secret+key")
SESSION = Credentials("ASIASESSION", "session-secret", "FwoGZXIvYXdzE//token+with/odd=chars")
# 2026-12-01T10:00:00Z
NOW = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
NOW_MS = 1_796_119_200_000
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def binary():
    given = os.environ.get("SLUICE_SIGV4_INTEROP")
    if given:
        return given
    subprocess.run(["cargo", "build", "-q", "-p", "sluice-security", "--example", "sigv4_interop"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "examples", "sigv4_interop")


@pytest.fixture(scope="module")
def rust():
    process = subprocess.Popen([binary()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(command):
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        assert line, "the interop program exited"
        return json.loads(line)

    yield call
    process.stdin.close()
    process.wait(timeout=10)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))


def wire(method, url, headers, body):
    """The request as it crosses the wire: the HTTP client adds Host from the URL."""
    parts = urllib.parse.urlsplit(url)
    # botocore keeps some header values as bytes; on the wire they are the same octets.
    pairs = [[name, value.decode("latin-1") if isinstance(value, bytes) else value] for name, value in headers]
    if not any(name.lower() == "host" for name, _ in pairs):
        pairs.append(["Host", parts.netloc])
    body = body or b""
    if isinstance(body, str):
        body = body.encode()
    return {
        "method": method,
        "path": parts.path or "/",
        "query": parts.query,
        "headers": pairs,
        "body": base64.b64encode(body).decode(),
    }


def verify(rust, request, now_ms=NOW_MS, secure=False):
    return rust(dict(request, op="verify", now_ms=now_ms, secure=secure))


def botocore_signed(method, url, headers, body, credentials=INTEROP):
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
    SigV4Auth(credentials, "kinesis", "us-east-1").add_auth(request)
    return wire(method, request.url, request.headers.items(), body)


def altered(request):
    """Copies of a signed request, each changed in one signed part."""
    body = base64.b64decode(request["body"])
    changes = {
        "body": dict(request, body=base64.b64encode(body + b" ").decode()),
        "path": dict(request, path=request["path"] + "x"),
        "query": dict(request, query=request["query"] + ("&" if request["query"] else "") + "extra=1"),
        "method": dict(request, method="PUT" if request["method"] != "PUT" else "POST"),
    }
    headers = request["headers"]
    target = next(i for i, (name, _) in enumerate(headers) if name.lower() == "x-amz-target")
    changed = [list(pair) for pair in headers]
    changed[target][1] = changed[target][1] + "X"
    changes["header"] = dict(request, headers=changed)
    return changes


def capture_boto3_requests():
    """Real requests of boto3's Kinesis client, caught just before they would be sent."""
    captured = []

    class Sent(Exception):
        pass

    def keep(request, **_):
        captured.append(request)
        raise Sent()

    session = boto3.session.Session(aws_access_key_id=INTEROP.access_key, aws_secret_access_key=INTEROP.secret_key, region_name="us-east-1")
    client = session.client("kinesis", endpoint_url="http://127.0.0.1:4567", config=botocore.config.Config(retries={"max_attempts": 0}))
    client.meta.events.register("before-send.kinesis.*", keep)
    calls = [
        lambda: client.list_streams(),
        lambda: client.create_stream(StreamName="orders", ShardCount=2),
        lambda: client.put_record(StreamName="orders", PartitionKey="k é", Data=bytes(range(256))),
        lambda: client.put_records(StreamName="orders", Records=[{"PartitionKey": "a", "Data": b"x" * 1000}]),
        lambda: client.describe_stream(StreamName="orders-with.dots_and-dashes"),
        lambda: client.add_tags_to_stream(StreamName="orders", Tags={"team": "data  with   spaces"}),
    ]
    for call in calls:
        with pytest.raises(Sent):
            call()
    return [wire(r.method, r.url, r.headers.items(), r.body) for r in captured]


def test_boto3_kinesis_calls_verify_and_altered_copies_do_not(rust):
    requests = capture_boto3_requests()
    assert len(requests) == 6
    for request in requests:
        names = {name.lower() for name, _ in request["headers"]}
        assert {"authorization", "x-amz-date", "x-amz-target", "user-agent"} <= names
        assert verify(rust, request) == {"ok": True, "principal": "interop"}, request
        for what, copy in altered(request).items():
            answer = verify(rust, copy)
            assert answer == {"ok": False, "exception": "InvalidSignatureException", "message": MISMATCH}, (what, answer)


ODD = [
    ("POST", "http://127.0.0.1:4567/", [("X-Amz-Target", "Kinesis_20131202.ListStreams")], b"{}"),
    ("GET", "http://localhost:4567/a%20b/./c//d/../%7Euser/file.txt", [("X-Amz-Target", "t")], b""),
    ("POST", "http://127.0.0.1:4567/?b=2&a=1&a=0&empty=&flag&enc=a%2Fb%20c%2B&tilde=~", [("X-Amz-Target", "t")], b"body"),
    ("POST", "http://[::1]:8443/x", [("X-Amz-Target", "t"), ("X-Custom", "one"), ("X-Custom", "  two   words  "), ("X-Empty", "")], b"\x00\xff"),
    ("PUT", "http://127.0.0.1/path/with:colon@and!bang", [("X-Amz-Target", "t"), ("X-Tabs", "a\tb")], b"x" * 5000),
]


@pytest.mark.parametrize("method,url,headers,body", ODD)
def test_odd_requests_signed_by_botocore_verify(rust, method, url, headers, body):
    request = botocore_signed(method, url, headers, body)
    assert verify(rust, request) == {"ok": True, "principal": "interop"}
    for what, copy in altered(request).items():
        answer = verify(rust, copy)
        assert answer["exception"] == "InvalidSignatureException", (what, answer)


def test_session_tokens_from_botocore_verify(rust):
    request = botocore_signed("POST", "http://127.0.0.1:4567/", [("X-Amz-Target", "Kinesis_20131202.ListStreams")], b"{}", SESSION)
    assert verify(rust, request) == {"ok": True, "principal": "session"}
    without = dict(request, headers=[p for p in request["headers"] if p[0].lower() != "x-amz-security-token"])
    assert verify(rust, without)["exception"] == "UnrecognizedClientException"


def test_clock_skew_and_unknown_keys_get_awss_errors(rust):
    request = botocore_signed("POST", "http://127.0.0.1:4567/", [("X-Amz-Target", "t")], b"{}")
    late = verify(rust, request, now_ms=NOW_MS + 6 * 60_000)
    assert late == {
        "ok": False,
        "exception": "InvalidSignatureException",
        "message": "Signature expired: 20261201T100000Z is now earlier than 20261201T100100Z (20261201T100600Z - 5 min.)",
    }
    stranger = botocore_signed("POST", "http://127.0.0.1:4567/", [("X-Amz-Target", "t")], b"{}", Credentials("AKIDSTRANGER", "x"))
    assert verify(rust, stranger) == {
        "ok": False,
        "exception": "UnrecognizedClientException",
        "message": "The security token included in the request is invalid.",
    }
    unsigned = wire("POST", "http://127.0.0.1:4567/", [("X-Amz-Target", "t")], b"{}")
    assert verify(rust, unsigned) == {"ok": False, "exception": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}


@pytest.mark.parametrize("credentials", [INTEROP, SESSION], ids=["keys", "session"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:4567/", "http://127.0.0.1:4567/stream/x?Action=ListStreams&Limit=10&Name=a%2Fb"])
def test_presigned_urls_from_botocore_verify_until_they_expire(rust, credentials, url):
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials, "kinesis", "us-east-1", expires=120).add_auth(request)
    signed = wire("GET", request.url, [], b"")
    assert "X-Amz-Signature=" in signed["query"]
    assert verify(rust, signed)["ok"] is True
    assert verify(rust, signed, now_ms=NOW_MS + 119_000)["ok"] is True
    expired = verify(rust, signed, now_ms=NOW_MS + 121_000)
    assert expired["exception"] == "InvalidSignatureException" and expired["message"].startswith("Signature expired: 20261201T100000Z")
    tampered = dict(signed, query=signed["query"].replace("X-Amz-Expires=120", "X-Amz-Expires=600"))
    assert verify(rust, tampered)["message"] == MISMATCH
    both = dict(signed, headers=signed["headers"] + [["Authorization", "AWS4-HMAC-SHA256 x"]])
    assert verify(rust, both)["message"] == "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."


SIGNING_CASES = ODD + [
    ("POST", "http://127.0.0.1:4567/", [("X-Amz-Target", "Kinesis_20131202.PutRecord"), ("Content-Type", "application/x-amz-json-1.1"), ("User-Agent", "ignored")], b'{"Data":"aGk="}'),
]


@pytest.mark.parametrize("credentials", [INTEROP, SESSION], ids=["keys", "session"])
@pytest.mark.parametrize("method,url,headers,body", SIGNING_CASES)
def test_the_rust_signer_matches_botocore(rust, credentials, method, url, headers, body):
    parts = urllib.parse.urlsplit(url)
    # botocore signs the Host header it derives from the URL; give the Rust signer the same.
    request = wire(method, url, headers, body)
    answer = rust(dict(request, op="sign", now_ms=NOW_MS, access_key_id=credentials.access_key, secret=credentials.secret_key, token=credentials.token))
    added = dict((name.lower(), value) for name, value in answer["headers"])

    expected = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        expected.headers[name] = value
    expected.headers["Host"] = parts.netloc
    SigV4Auth(credentials, "kinesis", "us-east-1").add_auth(expected)
    assert added["authorization"] == expected.headers["Authorization"]
    assert added["x-amz-date"] == expected.headers["X-Amz-Date"]
    if credentials.token:
        assert added["x-amz-security-token"] == credentials.token
    # And what the Rust signer produced verifies in Rust too.
    signed = dict(request, headers=request["headers"] + [[n, v] for n, v in answer["headers"]])
    assert verify(rust, signed)["ok"] is True


@pytest.mark.parametrize("credentials", [INTEROP, SESSION], ids=["keys", "session"])
def test_the_rust_presigner_matches_botocore(rust, credentials):
    url = "http://127.0.0.1:4567/stream/x?Action=ListStreams&Limit=10"
    request = wire("GET", url, [], b"")
    answer = rust(dict(request, op="presign", now_ms=NOW_MS, expires=300, access_key_id=credentials.access_key, secret=credentials.secret_key, token=credentials.token))
    ours = urllib.parse.parse_qs(answer["query"])

    expected = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials, "kinesis", "us-east-1", expires=300).add_auth(expected)
    theirs = urllib.parse.parse_qs(urllib.parse.urlsplit(expected.url).query)
    assert ours == theirs
    assert verify(rust, dict(request, query=answer["query"]))["ok"] is True
