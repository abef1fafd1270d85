-- The hold-out timer load, one pass per "run" call: 100,000 skynet.timeout
-- calls with delays of 1-100 ticks (a fixed pseudo-random sequence),
-- registered in batches of 1,000 with skynet.yield() between.
--
-- Answers with:
-- - the scheduling rate: timeouts registered per second of the scheduling
--   loop's wall time, the yields (and the callbacks that run in them) included;
-- - the lateness of each callback: the skynet.hpc() at which it starts minus
--   the requested time, which is the skynet.hpc() read just before its
--   skynet.timeout call plus ti × 10 ms. Its p50, p99 and maximum (ms), and how
--   many callbacks ran before their requested time ("early").
local skynet = require "skynet"

local N, BATCH = 100000, 1000

local function percentile(sorted, p)
	return sorted[math.max(1, math.ceil(#sorted * p))]
end

local function run()
	local late = {}
	local early = 0
	local left = N
	local all_fired = {}
	local x = 12345
	collectgarbage()
	local t0 = skynet.hpc()
	for _ = 1, N // BATCH do
		for _ = 1, BATCH do
			x = (x * 1103515245 + 12345) % 2147483648
			local ti = x % 100 + 1
			local requested = skynet.hpc() + ti * 10000000
			skynet.timeout(ti, function()
				local d = skynet.hpc() - requested
				if d < 0 then early = early + 1 end
				late[#late + 1] = d
				left = left - 1
				if left == 0 then skynet.wakeup(all_fired) end
			end)
		end
		skynet.yield()
	end
	local rate = N / ((skynet.hpc() - t0) / 1e9)
	if left > 0 then skynet.wait(all_fired) end
	table.sort(late)
	return rate, percentile(late, 0.5) / 1e6, percentile(late, 0.99) / 1e6, late[#late] / 1e6, early
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd)
		assert(cmd == "run")
		skynet.ret(skynet.pack(run()))
	end)
end)
