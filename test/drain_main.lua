-- drain_main: the start service of the SIGTERM drain tests
-- (integration-tests/tests/operations.rs). It launches a worker (this file
-- with the argument "worker"), queues `drain_jobs` messages of `drain_job_ms`
-- of busy work each on it, and prints "drain_main: queued N". The worker
-- prints "drain_main: handled N" after the last one.
local skynet = require "skynet"

local mode = ...

local function busy(ms)
	local t = skynet.hpc()
	while skynet.hpc() - t < ms * 1000000 do
	end
end

if mode == "worker" then
	local job_ms = tonumber(skynet.getenv "drain_job_ms") or 10
	local handled = 0
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, n)
			if cmd == "job" then
				busy(job_ms)
				handled = handled + 1
				if handled == n then
					skynet.error("drain_main: handled", n)
				end
			end
		end)
	end)
else
	skynet.start(function()
		local n = tonumber(skynet.getenv "drain_jobs") or 100
		local w = skynet.newservice("drain_main", "worker")
		for _ = 1, n do
			skynet.send(w, "lua", "job", n)
		end
		skynet.error("drain_main: queued", n)
	end)
end
