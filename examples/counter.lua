-- A small service used by examples/main.lua.
local skynet = require "skynet"

local total = 0
local command = {}

function command.add(n)
	total = total + n
end

function command.get()
	return total
end

function command.echo(...)
	return ...
end

function command.fail()
	error "counter refuses"
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, cmd, ...)
		local f = assert(command[cmd], cmd)
		if session == 0 then
			f(...)
		else
			skynet.retpack(f(...))
		end
	end)
end)
