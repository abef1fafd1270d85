-- skynet.monitor: the exit monitor hears about every EXIT and KILL.
-- Lines start with "t_monitor:"; the last one is "t_monitor: done".
local skynet = require "skynet"
local core = require "skynet.core"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_monitor:", ...)
end

if mode == "child" then
	skynet.start(function()
		skynet.dispatch("lua", function()
			skynet.exit()
		end)
	end)
	return
end

skynet.start(function()
	log("no monitor", tostring((core.command "MONITOR")))
	local m = skynet.monitor "t_monitor_watch"
	log("monitor set", core.command "MONITOR" == string.format(":%x", m))
	log("query", skynet.monitor("t_monitor_watch", true) == m)
	local a = skynet.newservice(SERVICE_NAME, "child")
	local b = skynet.newservice(SERVICE_NAME, "child")
	log("children", skynet.address(a), skynet.address(b))
	skynet.kill(a)
	skynet.sleep(2)
	skynet.send(b, "lua", "bye")
	skynet.sleep(5)
	log "done"
	skynet.abort()
end)
