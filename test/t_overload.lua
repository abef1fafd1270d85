-- More than 1024 queued messages: "May overload, message queue length = N"
-- when the service pops one; STAT mqlen / message / cpu.
-- Lines start with "t_overload:"; the last one is "t_overload: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_overload:", ...)
end

if mode == "busy" then
	local count = 0
	skynet.start(function()
		skynet.dispatch("lua", function(session, _, cmd, n)
			if cmd == "block" then
				-- busy (no yield) until the sender has queued `n` messages
				local t0 = skynet.hpc()
				while skynet.mqlen() < n and skynet.hpc() - t0 < 3 * 1000000000 do
				end
				log("mqlen while blocked", skynet.mqlen() >= n, skynet.stat "mqlen" >= n)
			elseif cmd == "msg" then
				count = count + 1
			elseif cmd == "stat" then
				skynet.retpack(count, skynet.stat "message", skynet.stat "cpu", skynet.mqlen())
			end
		end)
	end)
	return
end

skynet.start(function()
	local busy = skynet.newservice(SERVICE_NAME, "busy")
	local message0 = select(2, skynet.call(busy, "lua", "stat"))
	skynet.send(busy, "lua", "block", 3000)
	for i = 1, 3000 do
		skynet.send(busy, "lua", "msg")
	end
	local count, message, cpu, mqlen = skynet.call(busy, "lua", "stat")
	log("handled", count, "messages counted", message - message0, "cpu", math.type(cpu), cpu > 0, "mqlen", mqlen)
	log("own stat", math.type(skynet.stat "message"), skynet.stat "message" > 0, skynet.mqlen())
	log "done"
	skynet.abort()
end)
