-- ct_echo: the service the container tests (integration-tests/tests/containers.rs)
-- call across nodes. Argument: the global name to register (e.g. ECHO2).
--
-- lua commands:
--   echo(...)   returns its arguments (a call)
--   hang()      never answers (a call that stays pending)
--   tick(n, from, boot)  counts sends; logs every 50th. Per sender
--               incarnation (`boot`) the numbers must rise: a repeat or a
--               step back is "ct: FAIL"; a skipped number (sent while this
--               node was down, or lost) is logged as "ct: <name> gap from
--               harbor <from>: <missing> ticks (<a>..<b>)".
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

local last_tick = {}	-- from harbor -> { boot = ..., n = ... }

function cmd.tick(n, from, boot)
	local l = last_tick[from]
	if l and l.boot == boot then
		if n <= l.n then
			skynet.error(string.format("ct: FAIL %s tick %d from harbor %d after %d", name, n, from, l.n))
		elseif n > l.n + 1 then
			skynet.error(string.format("ct: %s gap from harbor %d: %d ticks (%d..%d)",
				name, from, n - l.n - 1, l.n + 1, n - 1))
		end
		l.n = math.max(l.n, n)
	else
		last_tick[from] = { boot = boot, n = n }
	end
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
