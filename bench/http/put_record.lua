-- wrk: PutRecord of RECORD_BYTES (env, default 1024) bytes, with 1,024 partition keys per thread
-- so that records spread over every shard. Counts non-200 answers.
local record_bytes = tonumber(os.getenv("RECORD_BYTES") or "1024")
local stream = os.getenv("STREAM") or "bench"

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64_of_length(n)
  -- Valid base64 of exactly n bytes, so that every server stores RECORD_BYTES and MB/s are
  -- comparable: whole 3-byte groups from a fixed pattern (any base64 text decodes to some
  -- bytes, and the server's cost is the same), then "AA==" or "AAA=" (zero bits) for the last
  -- one or two bytes, which strict decoders accept.
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

local data = base64_of_length(record_bytes)
local counter = 0
thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
-- kinesalite wants a SigV4-shaped Authorization (it does not verify it); Sluice accepts one.
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=sluice/20240101/us-east-1/kinesis/aws4_request, " ..
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" .. string.rep("0", 64)
wrk.headers["X-Amz-Date"] = "20240101T000000Z"
wrk.headers["X-Amz-Target"] = "Kinesis_20131202.PutRecord"

failures = 0

-- Requests are built once per thread (a pool with distinct partition keys, cycled), so that
-- the client spends its CPU sending rather than building strings.
local pool_size = 1024
local pool = nil

function request()
  if pool == nil then
    pool = {}
    for p = 1, pool_size do
      local body = '{"StreamName":"' .. stream .. '","PartitionKey":"k' .. thread_id .. '-' .. p ..
          '","Data":"' .. data .. '"}'
      pool[p] = wrk.format(nil, "/", nil, body)
    end
  end
  counter = counter + 1
  return pool[counter % pool_size + 1]
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
  io.write(string.format("RESULT requests=%d seconds=%.3f failed=%d records_per_request=1 record_bytes=%d p50_us=%d p99_us=%d timeouts=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, failed, record_bytes,
    latency:percentile(50), latency:percentile(99), summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write))
end
