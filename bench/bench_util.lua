-- bench_util: what the benchmark services share (skynet-bench puts bench/ on
-- lua_path; add it to a C skynet config that runs them).
--
--   util.report(name, value, unit)  logs "BENCH <name> <value> <unit>"
--   util.now() -> seconds (skynet.hpc)
--   util.run(callers, per, one) -> calls/s: `callers` coroutines, each
--     making `per` calls of one(caller, i); an error of one of them is
--     raised again once all have ended
local skynet = require "skynet"

local util = {}

function util.report(name, value, unit)
	skynet.error(string.format("BENCH %s %.0f %s", name, value, unit))
end

function util.now()
	return skynet.hpc() / 1e9
end

function util.run(callers, per, one)
	local left = callers
	local me = coroutine.running()
	local failed
	local t0 = util.now()
	for c = 1, callers do
		skynet.fork(function()
			local ok, err = pcall(function()
				for i = 1, per do
					one(c, i)
				end
			end)
			failed = failed or (not ok and err) or nil
			left = left - 1
			if left == 0 then
				skynet.wakeup(me)
			end
		end)
	end
	skynet.wait(me)
	local rate = per * callers / (util.now() - t0)
	if failed then
		error(failed, 0)
	end
	return rate
end

return util
