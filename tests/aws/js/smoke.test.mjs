// The AWS SDK for JavaScript v3 against sluiced at $SLUICE_ENDPOINT: create, put, get, as an
// application written for Kinesis would do them. Run through tests/aws/with-sluiced.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  PutRecordsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  DeleteStreamCommand,
  ResourceNotFoundException,
} from "@aws-sdk/client-kinesis";

const endpoint = process.env.SLUICE_ENDPOINT;
assert.ok(endpoint, "run through tests/aws/with-sluiced.sh");
const kinesis = new KinesisClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "sluice", secretAccessKey: "sluice" },
  maxAttempts: 1,
});

test("create, put and get records with the JS SDK v3", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName: "js-smoke", ShardCount: 1 }));
  const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "js-smoke" }));
  assert.equal(summary.StreamDescriptionSummary.StreamStatus, "ACTIVE");
  assert.ok(summary.StreamDescriptionSummary.StreamCreationTimestamp instanceof Date);

  const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
  const put = await kinesis.send(new PutRecordCommand({ StreamName: "js-smoke", Data: everyByte, PartitionKey: "k" }));
  assert.equal(put.ShardId, "shardId-000000000000");
  assert.match(put.SequenceNumber, /^\d+$/);
  const batch = await kinesis.send(new PutRecordsCommand({
    StreamName: "js-smoke",
    Records: ["a", "b", "c"].map((s) => ({ Data: new TextEncoder().encode(s), PartitionKey: s })),
  }));
  assert.equal(batch.FailedRecordCount, 0);

  const { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({
    StreamName: "js-smoke", ShardId: put.ShardId, ShardIteratorType: "TRIM_HORIZON",
  }));
  const page = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
  assert.equal(page.Records.length, 4);
  assert.deepEqual(page.Records[0].Data, everyByte);
  assert.equal(page.Records[0].SequenceNumber, put.SequenceNumber);
  assert.ok(page.Records[0].ApproximateArrivalTimestamp instanceof Date);
  assert.deepEqual(page.Records.slice(1).map((r) => new TextDecoder().decode(r.Data)), ["a", "b", "c"]);
  assert.equal(page.MillisBehindLatest, 0);

  await kinesis.send(new DeleteStreamCommand({ StreamName: "js-smoke" }));
  await assert.rejects(
    kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "js-smoke" })),
    (error) => error instanceof ResourceNotFoundException && error.$metadata.httpStatusCode === 400,
  );
});
