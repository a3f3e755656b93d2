-- What the wrk scripts of bench/http share (loaded with dofile): their threads, each numbered
-- in `thread_id`, the Kinesis request headers, record data, the answers each counts as failed,
-- and the RESULT line that run.sh and auth.sh parse.
local result = {}
local threads = {}
failures = 0
thread_id = 0

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

-- POST / to `operation` (`Kinesis_20131202.<Operation>`), with the SigV4-shaped Authorization
-- kinesalite wants (it does not verify it; Sluice without --credentials accepts one).
function result.kinesis_request(operation)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=sluice/20240101/us-east-1/kinesis/aws4_request, " ..
      "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" .. string.rep("0", 64)
  wrk.headers["X-Amz-Date"] = "20240101T000000Z"
  wrk.headers["X-Amz-Target"] = "Kinesis_20131202." .. operation
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Valid base64 of exactly n bytes, so that every server stores RECORD_BYTES and MB/s are
-- comparable: whole 3-byte groups from a fixed pattern (any base64 text decodes to some bytes,
-- and the server's cost is the same), then "AA==" or "AAA=" (zero bits) for the last one or
-- two bytes, which strict decoders accept.
function result.base64_of_length(n)
  local out = {}
  for i = 1, math.floor(n / 3) * 4 do
    local k = (i * 7) % 64 + 1
    out[i] = alphabet:sub(k, k)
  end
  local rest = n % 3
  if rest == 1 then
    out[#out + 1] = "AA=="
  elseif rest == 2 then
    out[#out + 1] = "AAA="
  end
  return table.concat(out)
end

-- Counts an answer as failed unless `ok(status, body)`.
function result.count_failures(ok)
  function response(status, headers, body)
    if not ok(status, body) then
      failures = failures + 1
    end
  end
end

-- An answer to PutRecords that stored every record. Servers differ in JSON spacing (moto writes
-- `"FailedRecordCount": 0`).
function result.all_records_stored(status, body)
  return status == 200 and body:find('"FailedRecordCount"%s*:%s*0[,}%s]') ~= nil
end

-- Prints the RESULT line at the end: `records` per request of `record_bytes` each.
function result.report(records, record_bytes)
  function done(summary, latency, requests)
    local failed = 0
    for _, thread in ipairs(threads) do
      failed = failed + thread:get("failures")
    end
    io.write(string.format("RESULT requests=%d seconds=%.3f failed=%d records_per_request=%d record_bytes=%d p50_us=%d p99_us=%d timeouts=%d socket_errors=%d\n",
      summary.requests, summary.duration / 1e6, failed, records, record_bytes,
      latency:percentile(50), latency:percentile(99), summary.errors.timeout,
      summary.errors.connect + summary.errors.read + summary.errors.write))
  end
end

return result
