-- Starts debug_console on 127.0.0.1 port 0 and a target service (.target)
-- for node/tests/debug_console.rs, which drives the console over TCP.
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"

local mode = ...

local function log(...)
	skynet.error("t_dconsole:", ...)
end

if mode == "target" then
	local CMD = {}
	function CMD.echo(...)
		return ...
	end
	skynet.start(function()
		skynet.info_func(function(...)
			return { hello = "world", args = table.concat({ ... }, ",") }
		end)
		skynet.dispatch("lua", function(_, _, cmd, ...)
			local f = CMD[cmd]
			if f then
				skynet.retpack(f(...))
			else
				error("no command " .. tostring(cmd))
			end
		end)
		-- a thread parked on a sleep: `task` lists it, `killtask` ends it
		skynet.fork(function()
			skynet.sleep(1000000)
			log("parked thread woke")
		end)
		skynet.register ".target"
	end)
	return
end

if mode == "idle" then
	skynet.start(function() end)
	return
end

skynet.start(function()
	skynet.newservice("debug_console", "127.0.0.1", 0)
	local target = skynet.newservice(SERVICE_NAME, "target")
	-- a listening socket, so netstat has something to show
	local id = socket.listen("127.0.0.1", 0)
	socket.start(id, function(fd)
		socket.close(fd)
	end)
	log("ready", skynet.address(target))
end)
