"""Encryption at rest through boto3 against real `sluiced` processes: StartStreamEncryption /
StopStreamEncryption with every form of KeyId, the describe fields and the UPDATING -> ACTIVE
transition, the KMS errors, the bytes on disk before and after, reads after a clean restart and
after SIGKILL, and a changed master key refused on read (docs/security.md, "Encryption at rest").
"""
import base64
import glob
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import SLUICED, free_port

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
DISABLED_ID = "0000abcd-12ab-34cd-56ef-1234567890ab"
ACCOUNT = "000000000000"


def key_store(path, material=bytes(range(32))):
    text = f"""
[[key]]
key_id = "{KEY_ID}"
aliases = ["alias/orders"]
material = "{base64.b64encode(material).decode()}"

[[key]]
key_id = "{DISABLED_ID}"
aliases = ["alias/off"]
state = "Disabled"
material = "{base64.b64encode(bytes(32)).decode()}"
"""
    with open(path, "w") as f:
        f.write(text)


class Node:
    """One sluiced on a data directory that outlives it (restarts reuse it)."""

    def __init__(self, root, keys):
        self.data, self.keys = os.path.join(root, "data"), keys
        self.process = None

    def start(self):
        self.http_port, self.metrics_port = free_port(), free_port()
        self.process = subprocess.Popen(
            [SLUICED, "--data-dir", self.data, "--cores", "2", "--limits", "unlimited",
             "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{self.http_port}",
             "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--log-level", "warn", "--kms-keys", self.keys])
        client = self.client()
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"sluiced exited: {self.process.returncode}"
            try:
                client.list_streams()
                return client
            except Exception:
                assert time.monotonic() < deadline, "sluiced did not start"
                time.sleep(0.05)

    def client(self, **config):
        settings = {"retries": {"total_max_attempts": 1}, "read_timeout": 30}
        settings.update(config)
        return boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{self.http_port}", region_name="us-east-1",
                            config=Config(**settings))

    def gauge(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.split(" ")[0] in (name, name + "{}"):
                    return float(line.split()[1])
        raise AssertionError(f"{name} is not in the scrape")

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        assert code == (0 if sig == signal.SIGTERM else -sig), code

    def journal_bytes(self):
        out = b""
        for path in sorted(glob.glob(os.path.join(self.data, "journal-*", "*.seg"))):
            with open(path, "rb") as f:
                out += f.read()
        return out


@pytest.fixture
def node():
    with tempfile.TemporaryDirectory(prefix="sluice-enc-") as root:
        keys = os.path.join(root, "keys.toml")
        key_store(keys)
        node = Node(root, keys)
        node.start()
        yield node
        if node.process.poll() is None:
            node.stop()


def create(client, name, shards=1):
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})


def wait_active(client, name):
    for _ in range(200):
        if client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} stayed UPDATING")


def read_all(client, name):
    shards = client.list_shards(StreamName=name)["Shards"]
    records = []
    for shard in shards:
        iterator = client.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator)
            records += page["Records"]
            if page.get("MillisBehindLatest", 0) == 0 and not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def error_of(call, **args):
    with pytest.raises(ClientError) as caught:
        call(**args)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_start_and_stop_encrypt_new_records_only_and_reads_are_plaintext(node):
    client = node.client()
    create(client, "enc")
    summary = client.describe_stream_summary(StreamName="enc")["StreamDescriptionSummary"]
    assert summary["EncryptionType"] == "NONE" and "KeyId" not in summary
    assert client.put_record(StreamName="enc", Data=b"plain-before-start", PartitionKey="k")["EncryptionType"] == "NONE"

    client.start_stream_encryption(StreamName="enc", EncryptionType="KMS", KeyId="alias/orders")
    described = client.describe_stream(StreamName="enc")["StreamDescription"]
    assert described["StreamStatus"] == "UPDATING"
    assert (described["EncryptionType"], described["KeyId"]) == ("KMS", "alias/orders")
    code, _ = error_of(client.start_stream_encryption, StreamName="enc", EncryptionType="KMS", KeyId="alias/orders")
    assert code == "ResourceInUseException"
    wait_active(client, "enc")
    summary = client.describe_stream_summary(StreamName="enc")["StreamDescriptionSummary"]
    assert (summary["EncryptionType"], summary["KeyId"]) == ("KMS", "alias/orders")

    put = client.put_record(StreamName="enc", Data=b"secret-after-start", PartitionKey="k")
    assert put["EncryptionType"] == "KMS"
    batch = client.put_records(StreamName="enc", Records=[
        {"Data": f"secret-batch-{i:04}".encode(), "PartitionKey": str(i)} for i in range(50)])
    assert batch["EncryptionType"] == "KMS" and batch["FailedRecordCount"] == 0

    disk = node.journal_bytes()
    assert b"plain-before-start" in disk, "records written before Start stay as they were"
    assert b"secret-after-start" not in disk and b"secret-batch-" not in disk, "sealed on disk"

    records = read_all(client, "enc")
    assert [r["Data"] for r in records] == [b"plain-before-start", b"secret-after-start"] + [
        f"secret-batch-{i:04}".encode() for i in range(50)]
    assert "EncryptionType" not in records[0] or records[0]["EncryptionType"] == "NONE"
    assert all(r["EncryptionType"] == "KMS" for r in records[1:])

    client.stop_stream_encryption(StreamName="enc", EncryptionType="KMS", KeyId=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}")
    assert client.describe_stream_summary(StreamName="enc")["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"
    wait_active(client, "enc")
    summary = client.describe_stream_summary(StreamName="enc")["StreamDescriptionSummary"]
    assert summary["EncryptionType"] == "NONE" and "KeyId" not in summary
    assert client.put_record(StreamName="enc", Data=b"plain-after-stop", PartitionKey="k")["EncryptionType"] == "NONE"
    assert b"plain-after-stop" in node.journal_bytes()
    assert [r["Data"] for r in read_all(client, "enc")][-1] == b"plain-after-stop"

    # Enhanced fan-out reads the same seam.
    arn = client.describe_stream_summary(StreamName="enc")["StreamDescriptionSummary"]["StreamARN"]
    consumer = client.register_stream_consumer(StreamARN=arn, ConsumerName="c")["Consumer"]
    for _ in range(200):
        if client.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
            break
        time.sleep(0.05)
    shard = client.list_shards(StreamName="enc")["Shards"][0]["ShardId"]
    events = client.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId=shard,
                                       StartingPosition={"Type": "TRIM_HORIZON"})["EventStream"]
    seen = []
    for event in events:
        seen += [r["Data"] for r in event["SubscribeToShardEvent"]["Records"]]
        if len(seen) >= 53:
            break
    assert seen[:3] == [b"plain-before-start", b"secret-after-start", b"secret-batch-0000"]


def test_every_form_of_key_id_is_accepted(node):
    client = node.client()
    forms = [KEY_ID, f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}", "alias/orders",
             f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/orders", "alias/aws/kinesis",
             f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/kinesis"]
    for i, key_id in enumerate(forms):
        name = f"form{i}"
        create(client, name)
        client.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key_id)
        wait_active(client, name)
        assert client.describe_stream(StreamName=name)["StreamDescription"]["KeyId"] == key_id
        client.put_record(StreamName=name, Data=f"record-{i}".encode(), PartitionKey="k")
        assert [r["Data"] for r in read_all(client, name)] == [f"record-{i}".encode()]
    managed = os.path.join(node.data, "kms", "aws-kinesis.key")
    assert os.stat(managed).st_mode & 0o777 == 0o600


def test_invalid_key_ids_and_arguments_get_the_models_errors(node):
    client = node.client()
    raw = node.client(parameter_validation=False)
    create(client, "bad")
    cases = [
        ("alias/nope", "KMSNotFoundException", f"Alias 'arn:aws:kms:us-east-1:{ACCOUNT}:alias/nope' is not found."),
        (str(uuid.UUID(int=7)), "KMSNotFoundException", f"Key 'arn:aws:kms:us-east-1:{ACCOUNT}:key/{uuid.UUID(int=7)}' does not exist"),
        ("orders", "KMSNotFoundException", "Invalid keyId 'orders'"),
        ("alias/off", "KMSDisabledException", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{DISABLED_ID} is disabled."),
    ]
    for key_id, code, message in cases:
        assert error_of(client.start_stream_encryption, StreamName="bad", EncryptionType="KMS", KeyId=key_id) == (code, message)
    assert error_of(raw.start_stream_encryption, StreamName="bad", EncryptionType="NONE", KeyId="alias/orders")[0] == "InvalidArgumentException"
    assert error_of(raw.start_stream_encryption, StreamName="bad", EncryptionType="KMS", KeyId="")[0] == "ValidationException"
    assert error_of(raw.start_stream_encryption, StreamName="bad", EncryptionType="KMS", KeyId="a" * 2049)[0] == "ValidationException"
    assert error_of(raw.start_stream_encryption, StreamName="bad", EncryptionType="AES", KeyId="alias/orders")[0] == "ValidationException"
    assert error_of(client.start_stream_encryption, StreamName="missing", EncryptionType="KMS", KeyId="alias/orders")[0] == "ResourceNotFoundException"
    assert error_of(client.stop_stream_encryption, StreamName="bad", EncryptionType="KMS", KeyId="alias/orders")[0] == "InvalidArgumentException"
    summary = client.describe_stream_summary(StreamName="bad")["StreamDescriptionSummary"]
    assert (summary["StreamStatus"], summary["EncryptionType"]) == ("ACTIVE", "NONE"), "refusals change nothing"


def test_sealed_records_survive_a_restart_and_sigkill_and_a_changed_key_is_refused(node):
    client = node.client()
    create(client, "crash", shards=4)
    client.start_stream_encryption(StreamName="crash", EncryptionType="KMS", KeyId="alias/orders")
    wait_active(client, "crash")
    client.put_record(StreamName="crash", Data=b"before-restart", PartitionKey="k")
    node.stop()
    client = node.start()
    acknowledged = [b"before-restart"]
    # Writes under load, then SIGKILL mid-stream: every acknowledged record must come back.
    for i in range(20):
        batch = [f"kill-{i:03}-{j:03}".encode() for j in range(100)]
        answer = client.put_records(StreamName="crash", Records=[{"Data": d, "PartitionKey": str(j)} for j, d in enumerate(batch)])
        acknowledged += [d for d, r in zip(batch, answer["Records"]) if "SequenceNumber" in r]
    writer = subprocess.Popen(["python3", "-c", f"""
import boto3, itertools
from botocore.config import Config
c = boto3.client("kinesis", endpoint_url="http://127.0.0.1:{node.http_port}", region_name="us-east-1",
                 config=Config(retries={{"total_max_attempts": 1}}))
for i in itertools.count():
    c.put_records(StreamName="crash", Records=[{{"Data": b"unacked-%d" % i, "PartitionKey": str(j)}} for j in range(50)])
"""], env={**os.environ}, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    node.stop(signal.SIGKILL)
    writer.wait(timeout=30)
    assert b"kill-000-000" not in node.journal_bytes()
    client = node.start()
    records = read_all(client, "crash")
    data = {r["Data"] for r in records}
    assert set(acknowledged) <= data, "an acknowledged record was lost"
    assert all(r["EncryptionType"] == "KMS" for r in records)
    assert all(d in set(acknowledged) or d.startswith(b"unacked-") for d in data), "garbage returned"
    node.stop()

    # The same key id with other material: the records no longer authenticate.
    key_store(node.keys, material=bytes(32 * [9]))
    client = node.start()
    shard = client.list_shards(StreamName="crash")["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamName="crash", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    code, message = error_of(client.get_records, ShardIterator=iterator)
    assert code == "InternalFailure" and "cannot be decrypted" in message, (code, message)
    assert node.gauge("sluice_encrypted_streams_without_master_key") == 0, "the key id is still there"
    node.stop()

    # A key store without the stream's key (a member given another kms-keys file): the node
    # counts the stream, and reads of its sealed records are refused as KMS refuses them.
    other = uuid.UUID(int=5)
    with open(node.keys, "w") as f:
        f.write(f'[[key]]\nkey_id = "{other}"\nmaterial = "{base64.b64encode(bytes(32)).decode()}"\n')
    client = node.start()
    assert node.gauge("sluice_encrypted_streams_without_master_key") == 1
    iterator = client.get_shard_iterator(StreamName="crash", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    code, message = error_of(client.get_records, ShardIterator=iterator)
    assert code == "KMSNotFoundException" and KEY_ID in message, (code, message)
