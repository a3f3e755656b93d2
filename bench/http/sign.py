"""Writes PutRecords requests signed with SigV4 by botocore, for put_records_signed.lua: one
line per request, `authorization TAB x-amz-date TAB body`. Signatures are valid for 5 minutes
(the server's clock-skew window), so a run must start within that.

usage: sign.py ENDPOINT STREAM ACCESS_KEY_ID SECRET COUNT RECORDS RECORD_BYTES > FILE
"""
import base64
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, stream, key, secret = sys.argv[1:5]
count, records, record_bytes = (int(value) for value in sys.argv[5:8])
data = base64.b64encode(bytes(i % 251 for i in range(record_bytes))).decode()
signer = SigV4Auth(Credentials(key, secret), "kinesis", "us-east-1")
for p in range(count):
    body = json.dumps({"StreamName": stream, "Records": [
        {"PartitionKey": f"k-{p}-{i}", "Data": data} for i in range(records)]}, separators=(",", ":"))
    request = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"})
    signer.add_auth(request)
    print(f"{request.headers['Authorization']}\t{request.headers['X-Amz-Date']}\t{body}")
