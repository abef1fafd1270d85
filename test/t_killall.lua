-- Kills every other service (the logger included), then exits: with no
-- service left the process ends. Lines start with "t_killall:".
local skynet = require "skynet"
local core = require "skynet.core"
require "skynet.manager"

skynet.start(function()
	local me = skynet.self()
	skynet.error("t_killall: killing")
	skynet.sleep(5)	-- let the logger write our line
	local logger = skynet.localname ".logger" or 1
	-- every handle up to ours, except ourself (the logger is :00000001)
	for h = 1, me - 1 do
		if h ~= logger then
			core.command("KILL", string.format(":%x", h))
		end
	end
	core.command("KILL", string.format(":%x", logger))
	skynet.exit()
end)
