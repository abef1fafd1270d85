-- The less used part of the skynet API, which a service makes on first use:
-- when it is made (a field read, a TRACE message, a debug message), tracing
-- (trace, tracetag, traceproto, tracecall), task listings (task, uniqtask,
-- trace_timeout) and the handlers of unknown requests and responses.
-- Lines start with "t_ondemand:"; the last one is "t_ondemand: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_ondemand:", ...)
end

-- Whether this service has made the less used part of the API (rawget: a
-- plain read would make it).
local function made()
	return rawget(skynet, "rawcall") ~= nil
end

if mode == "plain" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd)
			local was_made = made()
			if cmd == "made" then
				skynet.retpack(was_made)
			elseif cmd == "tag" then
				skynet.retpack(was_made, skynet.tracetag())
			end
		end)
	end)
	return
end

if mode == "traced" then
	skynet.start(function()
		skynet.traceproto("lua", true)
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "off" then
				skynet.traceproto("lua", false)
			end
			skynet.retpack(skynet.tracetag())
		end)
	end)
	return
end

if mode == "unknown" then
	skynet.start(function()
		local old_request = skynet.dispatch_unknown_request(function(session, source, msg, sz, prototype)
			log("unknown request", session, prototype, skynet.tostring(msg, sz))
		end)
		local old_response = skynet.dispatch_unknown_response(function(session, source, msg, sz)
			log("unknown response", session, skynet.tostring(msg, sz))
		end)
		log("default handlers", type(old_request), type(old_response))
		skynet.dispatch("lua", function()
			skynet.retpack(true)
		end)
	end)
	return
end

-- Runs f in a forked thread and waits for its end.
local function in_thread(f)
	local token = {}
	skynet.fork(function()
		f()
		skynet.wakeup(token)
	end)
	skynet.wait(token)
end

local function sleeper()
	skynet.sleep(10000)
end

-- whether a traceback shows a thread of `sleeper`
local function in_sleeper(stack)
	return stack:find("in field 'sleep'", 1, true) ~= nil and stack:find("t_ondemand.lua:", 1, true) ~= nil
end

skynet.start(function()
	log("at start", made(), getmetatable(skynet) ~= nil)
	local plain = skynet.newservice(SERVICE_NAME, "plain")
	log("after a field read", made(), getmetatable(skynet) == nil)
	log("child", skynet.call(plain, "lua", "made"))
	skynet.call(plain, "debug", "PING")
	log("child after a debug message", skynet.call(plain, "lua", "made"))

	-- a traced call: the callee gets a TRACE message, then the request
	local plain2 = skynet.newservice(SERVICE_NAME, "plain")
	in_thread(function()
		log("tag before trace", skynet.tracetag())
		skynet.trace("probe")
		local tag = skynet.tracetag()
		log("tag", tag == skynet.address(skynet.self()) .. "-1")
		local child_made, child_tag = skynet.call(plain2, "lua", "tag")
		log("traced call", child_made, child_tag == tag)
	end)
	in_thread(function()
		log("other thread tag", skynet.tracetag())
	end)
	local msg, sz = skynet.tracecall("given-tag", plain2, "lua", skynet.pack("tag"))
	log("tracecall", skynet.unpack(msg, sz))

	-- traceproto: every request traced (true), or none (false)
	local traced = skynet.newservice(SERVICE_NAME, "traced")
	log("traceproto true", skynet.call(traced, "lua", "get") == skynet.address(traced) .. "-1")
	log("traceproto true again", skynet.call(traced, "lua", "get") == skynet.address(traced) .. "-2")
	skynet.call(traced, "lua", "off")
	in_thread(function()
		skynet.trace()
		log("traceproto false", skynet.call(traced, "lua", "get"))
	end)

	-- task listings
	log("tasks", skynet.task())
	local sleepers = {}
	for i = 1, 3 do
		sleepers[i] = skynet.fork(sleeper)
	end
	skynet.yield()
	log("tasks with sleepers", skynet.task())
	local session = skynet.task(sleepers[2])
	log("session of a thread", math.type(session), in_sleeper(skynet.task(session)))
	log("unknown session", skynet.task(123456))
	log("init", skynet.task("init"):match("^stack traceback:") ~= nil)
	local groups = skynet.uniqtask()
	for head, stack in pairs(groups) do
		log("group", head:match("^(%d+)\tsessions:%[[%d,]+%]\n$"), in_sleeper(stack))
	end
	skynet.trace_timeout(true)
	local timer = skynet.timeout(10000, function() end)
	local list = {}
	skynet.task(list)
	local n, timers = 0, 0
	for key, stack in pairs(list) do
		n = n + 1
		if key:match("^timer: %S+ session: %d+$") and stack:match("^TIMER %d+%+10000 : ") then
			timers = timers + 1
		end
	end
	log("listing", n, timers)
	skynet.trace_timeout(false)
	local untraced = skynet.timeout(10000, function() end)
	log("untraced timer", skynet.task(skynet.task(untraced)))
	log("timer type", type(timer), tostring(timer):match("^timer: ") ~= nil)
	for _, co in ipairs(sleepers) do
		skynet.killthread(co)
	end
	skynet.killthread(timer)
	skynet.killthread(untraced)
	log("tasks after kills", skynet.task())

	-- unknown requests and responses go to the handlers given
	local unknown = skynet.newservice(SERVICE_NAME, "unknown")
	skynet.register_protocol { name = "client", id = skynet.PTYPE_CLIENT, pack = function(s) return s end }
	skynet.send(unknown, "client", "hello")
	skynet.redirect(unknown, skynet.self(), "response", 4242, "late")
	skynet.call(unknown, "lua")
	log "done"
	skynet.abort()
end)
