-- Cluster-mode benchmark, the calling node (harbor 0, no master): calls and
-- pushes to "@sink" on node "sink" through skynet.cluster. Prints one
-- "BENCH name value unit" line per figure, then ends the node.
local skynet = require "skynet"
local cluster = require "skynet.cluster"
require "skynet.manager"	-- skynet.abort
local util = require "bench_util"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

local function secs(t0)
	return (skynet.hpc() - t0) / 1e9
end

-- sequential round trips: 3 rounds, the median is the figure
local function calls(n)
	local got = {}
	for r = 1, 3 do
		local t0 = skynet.hpc()
		for i = 1, n do
			cluster.call("sink", "@sink", "call", i)
		end
		got[r] = n / secs(t0)
	end
	table.sort(got)
	report("cluster_mode_call_sequential", got[2], "calls/s")
	report("cluster_mode_call_sequential_best", got[3], "calls/s")
end

local function concurrent(callers, per)
	local rate = util.run(callers, per, function(_, i)
		cluster.call("sink", "@sink", "call", i)
	end)
	report("cluster_mode_call_concurrent_" .. callers, rate, "calls/s")
end

local function pushes(n)
	local t0 = skynet.hpc()
	for i = 1, n, 1000 do
		for _ = 1, 1000 do
			cluster.send("sink", "@sink", "ping")
		end
		skynet.yield()
	end
	local got = cluster.call("sink", "@sink", "count")
	assert(got == n, string.format("sink counted %d pushes of %d", got, n))
	report("cluster_mode_send_one_way", n / secs(t0), "msg/s")
end

local function large(n, size)
	local s = string.rep("x", size)
	local t0 = skynet.hpc()
	for _ = 1, n do
		cluster.call("sink", "@sink", "call", s)
	end
	report("cluster_mode_call_64k_MiBps", n * size * 2 / secs(t0) / (1 << 20), "MiB/s")
end

skynet.start(function()
	cluster.call("sink", "@sink", "call", 0)	-- connected
	calls(20000)
	concurrent(16, 5000)
	pushes(200000)
	large(500, 64 * 1024)
	skynet.abort()
end)
