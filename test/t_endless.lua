-- A message that never ends is reported by the monitor thread (period 5 s):
-- the log says "maybe in an endless loop" and skynet.stat "endless" is true
-- exactly once. Lines start with "t_endless:"; the last one is "t_endless: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_endless:", ...)
end

skynet.start(function()
	log("endless before", skynet.endless(), skynet.stat "endless")
	local t0 = skynet.hpc()
	local flagged = false
	-- busy for at most 12 s: the monitor needs two of its 5 s checks
	while skynet.hpc() - t0 < 12 * 1000000000 do
		if skynet.stat "endless" == 1 then
			flagged = true
			break
		end
	end
	log("flagged", flagged, "after 5s", skynet.hpc() - t0 >= 5 * 1000000000)
	log("endless again", skynet.endless(), skynet.stat "endless")
	log("cpu while busy", skynet.stat "cpu" > 0 or skynet.stat "time" > 4)
	log "done"
	skynet.abort()
end)
