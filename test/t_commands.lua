-- Kernel text commands through skynet.core: REG, QUERY, NAME, STARTTIME,
-- MONITOR, LOGON/LOGOFF, SIGNAL 1 and SIGNAL 0 (breaking a busy loop).
local skynet = require "skynet"
require "skynet.manager"
local c = require "skynet.core"

local mode = ...

if mode == "spin" then
	skynet.start(function()
		skynet.dispatch("lua", function(session, source, cmd)
			if cmd == "spin" then
				local ok, err = pcall(function()
					while true do end
				end)
				skynet.error("t_commands: spin broken " .. tostring(ok) .. " " .. tostring(err))
				skynet.ret(skynet.pack("stopped"))
			else
				skynet.ret(skynet.pack("pong"))
			end
		end)
	end)
	return
end

local function say(...)
	skynet.error("t_commands: " .. table.concat({ ... }, " "))
end

skynet.start(function()
	local me = skynet.self()
	say("REG", tostring(c.command("REG") == string.format(":%x", me)))
	say("REG.name", tostring(c.command("REG", ".tcmd")))
	say("QUERY", tostring(c.command("QUERY", ".tcmd") == string.format(":%x", me)))
	say("QUERY missing", tostring((c.command("QUERY", ".nobody"))))
	say("NAME", tostring(c.command("NAME", ".tcmd2 " .. string.format(":%x", me))))
	say("localname", tostring(skynet.localname(".tcmd2") == me))
	local st = tonumber(c.command("STARTTIME"))
	say("STARTTIME", tostring(math.abs(st + skynet.now() // 100 - os.time()) <= 2))
	say("MONITOR unset", tostring((c.command("MONITOR"))))
	local spin = skynet.newservice("t_commands", "spin")
	c.command("LOGON", skynet.address(spin))
	skynet.call(spin, "lua", "ping")
	c.command("LOGOFF", skynet.address(spin))
	local f = io.open(skynet.getenv("logpath") .. string.format("/%08x.log", spin))
	local text = f and f:read("a") or ""
	if f then f:close() end
	say("LOGON logged", tostring(text:find(string.format(":%08x 10 ", me), 1, true) ~= nil))
	c.command("SIGNAL", skynet.address(spin) .. " 1")
	skynet.fork(function()
		skynet.sleep(50)
		c.command("SIGNAL", skynet.address(spin) .. " 0")
	end)
	say("spin answered", skynet.call(spin, "lua", "spin"))
	say("done")
	skynet.abort()
end)
