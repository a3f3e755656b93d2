-- wrk: DescribeStreamSummary of the bench stream, a call that reads and writes nothing durable:
-- what Sluice's HTTP stack costs per request without the journal (bench/http/run.sh).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
common.kinesis_request("DescribeStreamSummary")
wrk.body = '{"StreamName":"' .. (os.getenv("STREAM") or "bench") .. '"}'
common.count_failures(function(status, body) return status == 200 end)
common.report(0, 0)
