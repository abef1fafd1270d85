-- The benchmark driver, run by the skynet-bench binary (or by hand with a config
-- whose start is "bench_main"). Prints one "BENCH name value unit" line per figure.
local skynet = require "skynet"
require "skynet.manager"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

-- Figures that swing most on a shared machine are measured in rounds: the
-- median round is the figure, the best round is printed beside it.
local function rounds(name, k, unit, run)
	local got = {}
	for i = 1, k do
		got[i] = run()
	end
	table.sort(got)
	report(name, got[(k + 1) // 2], unit)
	report(name .. "_best", got[k], unit)
end

local function rss_kib()
	local f = io.open("/proc/self/status")
	local text = f:read "a"
	f:close()
	return tonumber(text:match("VmRSS:%s*(%d+)"))
end

local done_token = {}
local done = false

local function bench_send(n)
	local sink = skynet.newservice("bench_sink")
	skynet.call(sink, "lua", "expect", n)
	done = false
	local t0 = skynet.hpc()
	local batch = 1000
	for i = 1, n, batch do
		for j = 1, batch do
			skynet.send(sink, "lua", "ping")
		end
		skynet.yield()
	end
	if not done then skynet.wait(done_token) end
	local dt = (skynet.hpc() - t0) / 1e9
	report("send_one_way", n / dt, "msg/s")
end

local function bench_call(n)
	local sink = skynet.newservice("bench_sink")
	rounds("call_sequential", 3, "calls/s", function()
		local t0 = skynet.hpc()
		for i = 1, n do
			skynet.call(sink, "lua", "call", i)
		end
		return n / ((skynet.hpc() - t0) / 1e9)
	end)
end

local function bench_call_concurrent(callers, per)
	local sink = skynet.newservice("bench_sink")
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
	local dt = (skynet.hpc() - t0) / 1e9
	report("call_concurrent_" .. callers, callers * per / dt, "calls/s")
end

-- Each round launches n services and kills them afterwards, so the others
-- run with no extra services alive; memory per service is taken over the
-- first round, in a heap no earlier benchmark has grown.
local function bench_newservice(n)
	local first = true
	rounds("newservice", 3, "services/s", function()
		collectgarbage()
		local before = rss_kib()
		local launched = {}
		local t0 = skynet.hpc()
		for i = 1, n do
			launched[i] = skynet.newservice("bench_minimal")
		end
		local dt = (skynet.hpc() - t0) / 1e9
		skynet.sleep(10)
		if first then
			first = false
			report("memory_per_service", (rss_kib() - before) / n, "KiB")
		end
		for i = 1, n do
			skynet.kill(launched[i])
		end
		return n / dt
	end)
end

local function percentile(sorted, p)
	local i = math.max(1, math.ceil(#sorted * p))
	return sorted[i]
end

-- Burst: n timeouts due at the same deadline; how fast their callbacks run.
local function bench_timer_burst(n)
	local first, last
	local left = n
	for i = 1, n do
		skynet.timeout(10, function()
			local now = skynet.hpc()
			first = first or now
			last = now
			left = left - 1
			if left == 0 then skynet.wakeup(done_token) end
		end)
	end
	skynet.wait(done_token)
	report("timer_burst_callbacks", n / math.max((last - first) / 1e9, 1e-9), "callbacks/s")
end

-- Spread: n timeouts due over `span` cs, starting once all are registered;
-- lateness of each callback against its deadline (registration time + ti * 10 ms).
local function bench_timer_lateness(n, base, span)
	local late = {}
	local early = 0
	local left = n
	local first, last
	for i = 1, n do
		local ti = base + (i % span)
		local deadline = skynet.hpc() + ti * 10000000
		skynet.timeout(ti, function()
			local now = skynet.hpc()
			first = first or now
			last = now
			local d = now - deadline
			if d < 0 then early = early + 1 end
			late[#late + 1] = d
			left = left - 1
			if left == 0 then skynet.wakeup(done_token) end
		end)
	end
	skynet.wait(done_token)
	table.sort(late)
	report("timer_spread_callbacks", n / math.max((last - first) / 1e9, 1e-9), "callbacks/s")
	report("timer_lateness_min", late[1] / 1e6, "ms")
	report("timer_lateness_p99", percentile(late, 0.99) / 1e6, "ms")
	report("timer_lateness_max", late[#late] / 1e6, "ms")
	report("timer_early", early, "timers")
end

-- The hold-out load (bench_holdout.lua), `k` passes, each in a fresh service:
-- the median pass's scheduling rate and p99 lateness are the figures.
local function bench_timer_holdout(k)
	local rates, p50s, p99s = {}, {}, {}
	local max, early = 0, 0
	for i = 1, k do
		local load = skynet.newservice("bench_holdout")
		local rate, p50, p99, worst, e = skynet.call(load, "lua", "run")
		skynet.kill(load)
		rates[i], p50s[i], p99s[i] = rate / 1000, p50, p99
		max = math.max(max, worst)
		early = early + e
	end
	table.sort(rates)
	table.sort(p50s)
	table.sort(p99s)
	local mid = (k + 1) // 2
	report("timer_holdout_schedule", rates[mid], "k/s")
	report("timer_holdout_schedule_best", rates[k], "k/s")
	report("timer_holdout_p50", p50s[mid], "ms")
	report("timer_holdout_p99", p99s[mid], "ms")
	report("timer_holdout_p99_worst", p99s[k], "ms")
	report("timer_holdout_max", max, "ms")
	report("timer_holdout_early", early, "timers")
end

-- In a fresh service, so the driver's big heap (timer closures, sample
-- tables) does not weigh on the garbage collector during the measurement.
local function bench_pack(n)
	local packer = skynet.newservice("bench_pack")
	rounds("pack_unpack", 5, "ops/s", function()
		local rate, bytes = skynet.call(packer, "lua", n)
		return rate
	end)
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd)
		if cmd == "done" then
			done = true
			skynet.wakeup(done_token)
		end
	end)
	-- bench = "timer" (skynet-bench timer) runs the timer figures only.
	local only_timers = skynet.getenv("bench") == "timer"
	if not only_timers then
		bench_send(1000000)
		bench_call(200000)
		bench_call_concurrent(8, 25000)
		bench_newservice(5000)
	end
	bench_timer_burst(100000)
	bench_timer_lateness(100000, 100, 50)
	bench_timer_holdout(5)
	if not only_timers then
		bench_pack(200000)
	end
	skynet.abort()
end)
