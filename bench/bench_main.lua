-- The benchmark driver, run by the skynet-bench binary (or by hand with a config
-- whose start is "bench_main"). Prints one "BENCH name value unit" line per figure.
local skynet = require "skynet"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

local function bench_send(n)
	local sink = skynet.newservice("bench_sink")
	skynet.call(sink, "lua", "expect", n)
	local done = false
	skynet.dispatch("lua", function(_, _, cmd)
		if cmd == "done" then done = true; skynet.wakeup("send") end
	end)
	local t0 = skynet.hpc()
	local batch = 1000
	for i = 1, n, batch do
		for j = 1, batch do
			skynet.send(sink, "lua", "ping")
		end
		skynet.yield()
	end
	if not done then skynet.wait("send") end
	local dt = (skynet.hpc() - t0) / 1e9
	report("send_msgs_per_s", n / dt, "msg/s")
end

local function bench_call(n)
	local sink = skynet.newservice("bench_sink")
	local t0 = skynet.hpc()
	for i = 1, n do
		skynet.call(sink, "lua", "call", i)
	end
	local dt = (skynet.hpc() - t0) / 1e9
	report("call_seq_per_s", n / dt, "calls/s")
end

skynet.start(function()
	bench_send(1000000)
	bench_call(200000)
	skynet.abort()
end)
