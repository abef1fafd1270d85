-- skynet.injectcode (code run as if inside a running function) and the
-- debug command RUN (skynet.inject). Lines start with "t_inject:".
local skynet = require "skynet"
require "skynet.manager"
local injectcode = require "skynet.injectcode"

local mode = ...

local function log(...)
	skynet.error("t_inject:", ...)
end

if mode == "target" then
	local CMD = { value = 1 }
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd)
			skynet.retpack(CMD[cmd])
		end)
	end)
	return
end

local counter = 10	-- an upvalue of the functions below

local function here(a, b, ...)
	local sum = a + b
	-- the injected code reads locals, upvalues and varargs, and assigns them
	local ok, r1, r2 = injectcode("sum = sum * 2; counter = counter + 1; return sum, select('#', ...)")
	log("here", ok, r1, r2, sum, counter)
	local bad = table.pack(injectcode("error('oops', 0)"))
	log("error", bad[1], bad[2])
	log("syntax", (injectcode("return +")))
	return sum
end

-- a suspended coroutine: its frame is reached with co and level
local function parked(x)
	local y = x * 3
	coroutine.yield()
	return y
end

skynet.start(function()
	here(1, 2, "v1", "v2", "v3")
	local co = coroutine.create(parked)
	coroutine.resume(co, 5)
	log("other", injectcode("y = y + x; return y", co, 1))
	log("other after", select(2, coroutine.resume(co)))
	log("bad level", injectcode("return 1", co, 50))
	log("ext", injectcode("return helper(2)", nil, 0, { helper = function(n) return n * 7 end }))

	-- RUN through the debug protocol: print, _P, arguments, errors
	local t = skynet.newservice(SERVICE_NAME, "target")
	local ok, out = skynet.call(t, "debug", "RUN",
		"print('got', ...) _P.lua.CMD.value = 42 print(type(_U))", "inline.lua", "a", 2)
	log("run", ok, (out:gsub("\n", "|")))
	log("run changed", skynet.call(t, "lua", "value"))
	ok, out = skynet.call(t, "debug", "RUN", "print('x') error('bad', 0)", "e.lua")
	log("run error", ok, (out:gsub("\n", "|")))
	ok, out = skynet.call(t, "debug", "RUN", "return +", "s.lua")
	log("run syntax", ok, out:match("s%.lua:1:") ~= nil)
	log("done")
	skynet.abort()
end)
