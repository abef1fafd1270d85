-- cmode_echo: the service cluster-mode tests (test/cmode_main.lua) call on
-- another node. Answers:
--   echo(...) -> ...          whoami() -> config cmode_id
--   size(s) -> #s             big(n) -> n bytes
--   fail() raises             sleep(cs) -> true after cs centiseconds
--   fail_long(n) raises an n-byte error
--   GET(k) -> "val:"..k       (the reference exchange of the wire tests)
--   BIG() -> 40000 "x"
--   reset(), check() -> pushes received, first out-of-order seq or 0
-- and takes pushes "seq", n, payload.
local skynet = require "skynet"

local id = skynet.getenv "cmode_id" or "?"
local received, bad = 0, 0

local CMD = {}
function CMD.echo(...) return ... end
function CMD.whoami() return id end
function CMD.size(s) return #s end
function CMD.big(n) return string.rep("b", n) end
function CMD.fail() error("cmode_echo: fail on purpose") end
function CMD.fail_long(n) error(string.rep("E", n), 0) end
function CMD.sleep(cs) skynet.sleep(cs) return true end
function CMD.GET(k) return "val:" .. k end
function CMD.BIG() return string.rep("x", 40000) end
function CMD.reset() received, bad = 0, 0 return true end
function CMD.check() return received, bad end

skynet.start(function()
	skynet.dispatch("lua", function(session, _, cmd, ...)
		if cmd == "seq" then
			local n, payload = ...
			received = received + 1
			if bad == 0 and (n ~= received or #payload ~= (n % 97 == 0 and 40000 + n or n % 50)) then
				bad = n
			end
			return
		end
		local f = assert(CMD[cmd], cmd)
		if session == 0 then
			f(...)
		else
			skynet.retpack(f(...))
		end
	end)
end)
