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

// HTTPS with real signatures: a sluiced of its own with --credentials and TLS (a CA made here
// with openssl), trusted through an https.Agent, as an application behind a private CA does.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import https from "node:https";
// The SDK's own HTTP/1.1 handler (a dependency of @aws-sdk/client-kinesis): the Kinesis client
// defaults to its HTTP/2 handler, which takes no CA, so a private CA goes through an https.Agent.
import { NodeHttpHandler } from "@smithy/node-http-handler";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const sluiced = process.env.SLUICED ?? join(root, "target", "debug", "sluiced");

// A port nobody listens on now, chosen as sluice-testkit's free_port chooses (testkit/src/lib.rs
// says why): at random from up to 20,000 ports below the kernel's ephemeral range, where the
// ports of listen(0) and of outbound connections by the tests running beside this one are not
// drawn (CI once saw sluiced fail with "Address already in use" on a listen(0) port).
async function freePort() {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || 32768;
  } catch {}
  const span = Math.min(20000, ephemeralLow - 1024);
  for (;;) {
    const port = ephemeralLow - 1 - Math.floor(Math.random() * span);
    const server = net.createServer();
    const bound = await new Promise((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (bound) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
}

async function waitForPort(port, child) {
  for (let i = 0; i < 600; i++) {
    assert.equal(child.exitCode, null, "sluiced exited during start-up");
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`sluiced did not listen on ${port}`);
}

test("the JS SDK v3 over HTTPS with SigV4 against a daemon with --credentials", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-js-tls-"));
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
    "-out", "ca.pem", "-subj", "/CN=sluice-js-ca", "-days", "1");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem",
    "-out", "cert.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
    "cert.pem", "-days", "1", "-extfile", "ext");
  const policy = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}}';
  writeFileSync(join(dir, "credentials.toml"), '[[principal]]\nname = "js"\naccess_key_id = "AKIAJS00000000000001"\n'
    + `secret_access_key = "js-secret"\npolicies = ['''${policy}''']\n`);
  const [nativePort, httpPort] = [await freePort(), await freePort()];
  const child = spawn(sluiced, ["--data-dir", join(dir, "data"), "--cores", "1", "--log-level", "warn",
    "--listen", `127.0.0.1:${nativePort}`, "--http-listen", `127.0.0.1:${httpPort}`,
    "--metrics-listen", "127.0.0.1:0", "--credentials", join(dir, "credentials.toml"),
    "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")], { stdio: ["ignore", "ignore", "inherit"] });
  try {
    await waitForPort(httpPort, child);
    const client = (secretAccessKey) => new KinesisClient({
      endpoint: `https://127.0.0.1:${httpPort}`,
      region: "us-east-1",
      credentials: { accessKeyId: "AKIAJS00000000000001", secretAccessKey },
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: readFileSync(join(dir, "ca.pem")) }) }),
      maxAttempts: 1,
    });
    const signed = client("js-secret");
    await signed.send(new CreateStreamCommand({ StreamName: "js-tls", ShardCount: 1 }));
    const put = await signed.send(new PutRecordCommand({
      StreamName: "js-tls", Data: new TextEncoder().encode("over https"), PartitionKey: "k",
    }));
    const { ShardIterator } = await signed.send(new GetShardIteratorCommand({
      StreamName: "js-tls", ShardId: put.ShardId, ShardIteratorType: "TRIM_HORIZON",
    }));
    const page = await signed.send(new GetRecordsCommand({ ShardIterator }));
    assert.deepEqual(page.Records.map((r) => new TextDecoder().decode(r.Data)), ["over https"]);
    // The wrong secret is refused with AWS's error.
    await assert.rejects(
      client("not-it").send(new DescribeStreamSummaryCommand({ StreamName: "js-tls" })),
      (error) => error.name === "InvalidSignatureException" && /does not match/.test(error.message),
    );
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on("exit", resolve)));
    rmSync(dir, { recursive: true, force: true });
  }
});
