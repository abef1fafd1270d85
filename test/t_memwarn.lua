-- A service whose Lua memory passes 32 MiB logs "Memory warning".
-- Lines start with "t_memwarn:"; the last one is "t_memwarn: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_memwarn:", ...)
end

skynet.start(function()
	local big = string.rep("w", 40 * 1024 * 1024)
	log("allocated", #big)
	big = nil
	collectgarbage "collect"
	log "done"
	skynet.abort()
end)
