-- ct_echo: the service the container tests (integration-tests/tests/containers.rs)
-- call across nodes. Argument: the global name to register (e.g. ECHO2).
--
-- lua commands:
--   echo(...)   returns its arguments (a call)
--   hang()      never answers (a call that stays pending)
--   tick(n)     counts sends; logs every 50th
local skynet = require "skynet"
require "skynet.manager"

local name = ...
local ticks = 0
local cmd = {}

function cmd.echo(...)
	return ...
end

function cmd.hang()
	skynet.wait()
end

function cmd.tick(n, from)
	ticks = ticks + 1
	if ticks % 50 == 1 then
		skynet.error(string.format("ct: %s got tick %d from harbor %d (%d ticks so far)",
			name, n, from, ticks))
	end
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, c, ...)
		local f = assert(cmd[c], c)
		if session == 0 then
			f(...)
		else
			skynet.retpack(f(...))
		end
	end)
	skynet.register(name)
end)
