-- wrk: PutRecords of RECORDS (env, default 100) records of RECORD_BYTES (default 1024) bytes,
-- each with its own partition key. Counts non-200 answers and answers with failed records.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local record_bytes = tonumber(os.getenv("RECORD_BYTES") or "1024")
local stream = os.getenv("STREAM") or "bench"
local records = tonumber(os.getenv("RECORDS") or "100")

local data = common.base64_of_length(record_bytes)
local counter = 0
common.kinesis_request("PutRecords")
common.count_failures(common.all_records_stored)
common.report(records, record_bytes)

-- Bodies are built once per thread (a pool with distinct partition keys, cycled), so that the
-- client spends its CPU sending rather than concatenating 100 KiB strings per request.
local pool_size = 32
local pool = nil

local function build_pool()
  pool = {}
  for p = 1, pool_size do
    local entries = {}
    for i = 1, records do
      entries[i] = '{"PartitionKey":"k' .. thread_id .. '-' .. p .. '-' .. i .. '","Data":"' .. data .. '"}'
    end
    local body = '{"StreamName":"' .. stream .. '","Records":[' .. table.concat(entries, ",") .. ']}'
    pool[p] = wrk.format(nil, "/", nil, body)
  end
end

function request()
  if pool == nil then
    build_pool()
  end
  counter = counter + 1
  return pool[counter % pool_size + 1]
end
