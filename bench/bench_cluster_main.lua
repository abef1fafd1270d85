-- Cluster benchmark, harbor 2: calls and sends to BENCHSINK on harbor 1.
-- Prints one "BENCH name value unit" line per figure, then ends the node.
local skynet = require "skynet"
local harbor = require "skynet.harbor"
require "skynet.manager"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

local done_token = {}
local done = false

-- Sequential calls swing most on a shared machine: measured in 3 rounds, the
-- median is the figure and the best round is printed beside it.
local function calls(sink, n)
	local got = {}
	for r = 1, 3 do
		local t0 = skynet.hpc()
		for i = 1, n do
			skynet.call(sink, "lua", "call", i)
		end
		got[r] = n / ((skynet.hpc() - t0) / 1e9)
	end
	table.sort(got)
	report("cluster_call_sequential", got[2], "calls/s")
	report("cluster_call_sequential_best", got[3], "calls/s")
end

local function concurrent(sink, callers, per)
	local left = callers
	local t0 = skynet.hpc()
	for c = 1, callers do
		skynet.fork(function()
			for i = 1, per do
				skynet.call(sink, "lua", "call", i)
			end
			left = left - 1
			if left == 0 then skynet.wakeup(done_token) end
		end)
	end
	skynet.wait(done_token)
	report("cluster_call_concurrent_" .. callers, callers * per / ((skynet.hpc() - t0) / 1e9), "calls/s")
end

local function sends(sink, n)
	skynet.call(sink, "lua", "expect", n)
	done = false
	local t0 = skynet.hpc()
	for i = 1, n, 1000 do
		for j = 1, 1000 do
			skynet.send(sink, "lua", "ping")
		end
		skynet.yield()
	end
	if not done then skynet.wait(done_token) end
	report("cluster_send_one_way", n / ((skynet.hpc() - t0) / 1e9), "msg/s")
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd)
		if cmd == "done" then
			done = true
			skynet.wakeup(done_token)
		end
	end)
	local sink = harbor.queryname("BENCHSINK")
	skynet.call(sink, "lua", "call", 0)	-- links are up
	calls(sink, 50000)
	concurrent(sink, 16, 10000)
	sends(sink, 1000000)
	skynet.abort()
end)
