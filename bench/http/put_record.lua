-- wrk: PutRecord of RECORD_BYTES (env, default 1024) bytes, with 1,024 partition keys per thread
-- so that records spread over every shard. Counts non-200 answers.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local record_bytes = tonumber(os.getenv("RECORD_BYTES") or "1024")
local stream = os.getenv("STREAM") or "bench"

local data = common.base64_of_length(record_bytes)
local counter = 0
common.kinesis_request("PutRecord")
common.count_failures(function(status, body) return status == 200 end)
common.report(1, record_bytes)

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
