-- wrk: DescribeStreamSummary of the bench stream, a call that reads and writes nothing durable:
-- what Sluice's HTTP stack costs per request without the journal (bench/http/run.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=sluice/20240101/us-east-1/kinesis/aws4_request, " ..
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" .. string.rep("0", 64)
wrk.headers["X-Amz-Date"] = "20240101T000000Z"
wrk.headers["X-Amz-Target"] = "Kinesis_20131202.DescribeStreamSummary"
wrk.body = '{"StreamName":"' .. (os.getenv("STREAM") or "bench") .. '"}'

failures = 0
thread_id = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format("RESULT requests=%d seconds=%.3f failed=%d records_per_request=0 record_bytes=0 p50_us=%d p99_us=%d timeouts=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, failed,
    latency:percentile(50), latency:percentile(99), summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write))
end
