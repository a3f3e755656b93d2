-- wrk: PutRecords requests signed by sign.py (SIGNED names its file), sent in turn. The same
-- requests go to a daemon with and without --credentials, so the two differ only in the
-- server's SigV4 verification. Counts non-200 answers and answers with failed records.
local file = os.getenv("SIGNED")
local records = tonumber(os.getenv("RECORDS") or "100")
local record_bytes = tonumber(os.getenv("RECORD_BYTES") or "1024")
local counter = 0
local pool = nil
local threads = {}
failures = 0

function setup(thread)
  table.insert(threads, thread)
end

local function build_pool()
  pool = {}
  for line in io.lines(file) do
    local authorization, date, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {
      ["Content-Type"] = "application/x-amz-json-1.1",
      ["X-Amz-Target"] = "Kinesis_20131202.PutRecords",
      ["X-Amz-Date"] = date,
      ["Authorization"] = authorization,
    }
    pool[#pool + 1] = wrk.format("POST", "/", headers, body)
  end
end

function request()
  if pool == nil then
    build_pool()
  end
  counter = counter + 1
  return pool[counter % #pool + 1]
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"FailedRecordCount"%s*:%s*0[,}%s]') then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format("RESULT requests=%d seconds=%.3f failed=%d records_per_request=%d record_bytes=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration / 1e6, failed, records, record_bytes,
    latency:percentile(50), latency:percentile(99)))
end
