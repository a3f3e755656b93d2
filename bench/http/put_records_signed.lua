-- wrk: PutRecords requests signed by sign.py (SIGNED names its file), sent in turn. The same
-- requests go to a daemon with and without --credentials, so the two differ only in the
-- server's SigV4 verification. Counts non-200 answers and answers with failed records.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local file = os.getenv("SIGNED")
local records = tonumber(os.getenv("RECORDS") or "100")
local record_bytes = tonumber(os.getenv("RECORD_BYTES") or "1024")
local counter = 0
local pool = nil
common.count_failures(common.all_records_stored)
common.report(records, record_bytes)

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
