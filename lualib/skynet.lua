-- skynet: the Lua side of a service.
--
-- Message handlers run inside pooled coroutines ("workers").  A worker that
-- must wait (call, sleep, wait, ...) records what it waits for in `waiting`
-- (session -> thread) and yields "SUSPEND" to the dispatcher, which resumes
-- it when the matching RESPONSE or ERROR arrives.
--
-- Memory matters: every service has its own Lua state, so this file only
-- holds what nearly every service uses (plus exit, which must work even when
-- memory is short).  The rest of the API (response, request/select,
-- newservice, task listings, tracing, ...) and the `debug` protocol commands
-- live in skynet/debug.lua, compiled the first time one of them is used:
-- reading a field missing from this module loads it.

local core = require "skynet.core"
local modload = require "skynet.require"

local assert, error, type, tostring, pcall, pairs, select = assert, error, type, tostring, pcall, pairs, select
local tremove = table.remove
local new_thread = coroutine.create
local this_thread = coroutine.running
local yield = coroutine.yield
local close_thread = coroutine.close
local raw_resume = coroutine.resume	-- snlua installs the profiling version
local traceback = debug.traceback
local csend = core.send
local ctrace = core.trace

local RESPONSE, ERROR, TRACE = 1, 7, 12
local LAST_SESSION = 0x7fffffff

local skynet = {
	PTYPE_TEXT = 0,
	PTYPE_RESPONSE = 1,
	PTYPE_MULTICAST = 2,
	PTYPE_CLIENT = 3,
	PTYPE_SYSTEM = 4,
	PTYPE_HARBOR = 5,
	PTYPE_SOCKET = 6,
	PTYPE_ERROR = 7,
	PTYPE_QUEUE = 8,	-- only for the deprecated skynet.mqueue
	PTYPE_DEBUG = 9,
	PTYPE_LUA = 10,
	PTYPE_SNAX = 11,
	PTYPE_TRACE = 12,
}

local protocols = {}	-- name -> class, id -> class
skynet._proto = protocols
skynet.cache = require "skynet.codecache"

function skynet.register_protocol(class)
	local name, id = class.name, class.id
	assert(protocols[name] == nil and protocols[id] == nil)
	assert(type(name) == "string" and type(id) == "number" and id >= 0 and id <= 255)
	protocols[name] = class
	protocols[id] = class
end

---------------------------------------------------------------- state

local waiting = {}	-- session -> thread waiting for it, or "BREAK" (reply to drop)
local req_session = {}	-- thread -> session of the request it serves
local req_source = {}	-- thread -> source of the request it serves
local trace_tags = {}	-- thread -> trace tag (false: tracing forced off)
local pending_resp = {}	-- response closure -> address it must answer
local sleeping = {}	-- wakeup token -> session it sleeps on
local wake_list = {}	-- tokens to wake, FIFO
local watching = {}	-- session of an outgoing call -> callee address
local failed = {}	-- sessions whose call must fail, FIFO

local forks = {}	-- threads created by fork, run FIFO after each message
local fork_head, fork_tail = 1, 0

local current	-- the skynet thread being run (not a nested user coroutine)
local init_thread	-- thread running the start function, while it runs
local tracing = false	-- set once any trace feature is used; guards trace checks
local spawn	-- makes the thread of skynet.timeout (see trace_timeout)
local unknown_request, unknown_response
local inner, internals	-- interface to skynet/debug.lua, once it is loaded

---------------------------------------------------------------- sessions
-- The kernel hands out sessions 1..0x7fffffff and then wraps to 1, so an
-- old session may still be pending when its number comes round again.
-- Invariant: the session the kernel hands out next is never one we still
-- wait for.  Each time we obtain a session, sessions are burnt (genid) while
-- the following one is busy.

local function fresh(s)
	if s and waiting[s < LAST_SESSION and s + 1 or 1] ~= nil then
		repeat
			local burnt = core.genid()
		until waiting[burnt < LAST_SESSION and burnt + 1 or 1] == nil
	end
	return s
end

---------------------------------------------------------------- workers

local idle = setmetatable({}, { __mode = "kv" })	-- parked workers
local LATER = idle	-- marker: the body comes now, its arguments later

-- Body of every worker: run a job, clean up, park, repeat.
local function work(co, f, ...)
	if f == LATER then
		f = ...
		return work(co, f, yield())
	end
	f(...)
	local s = req_session[co]
	if s ~= nil and s ~= 0 then
		local info = debug.getinfo(f, "S")
		skynet.error(string.format("Maybe forgot response session %s from %s : %s:%d",
			s, skynet.address(req_source[co]), info.source, info.linedefined))
	end
	if tracing then
		local tag = trace_tags[co]
		if tag ~= nil then
			if tag then ctrace(tag, "end") end
			trace_tags[co] = nil
		end
	end
	if req_source[co] then
		req_session[co] = nil
		req_source[co] = nil
	end
	idle[#idle + 1] = co
	return work(co, yield "SUSPEND")
end

local function worker_main(...)
	return work(this_thread(), ...)
end

-- A worker ready to be resumed with (f, args...).
local function worker()
	local n = #idle
	if n > 0 then
		local co = idle[n]
		idle[n] = nil
		return co
	end
	return new_thread(worker_main)
end

-- A worker that runs f with the arguments of its next resume.
local function co_create(f)
	local co = worker()
	raw_resume(co, LATER, f)
	return co
end
spawn = co_create

---------------------------------------------------------------- suspend

local suspend

local function nop() end

-- Runs after a thread suspends: first the pending wakeups, then the calls
-- that must fail.  Each resumed thread suspends in turn, which comes back
-- here, until both queues are empty.
local function dispatch_wakeup()
	while wake_list[1] ~= nil do
		local s = sleeping[tremove(wake_list, 1)]
		if s then
			local co = waiting[s]
			if tracing and trace_tags[co] then
				ctrace(trace_tags[co], "resume")
			end
			waiting[s] = "BREAK"
			current = co
			return suspend(co, raw_resume(co, false, "BREAK", nil, s))
		end
	end
	while failed[1] ~= nil do
		local s = tremove(failed, 1)
		local co = waiting[s]
		if type(co) == "thread" then
			waiting[s] = nil
			current = co
			return suspend(co, raw_resume(co, false, nil, nil, s))
		end
	end
end

function suspend(co, ok, command)
	if not ok then
		local s = req_session[co]
		if s then
			if s ~= 0 then
				if trace_tags[co] then
					ctrace(trace_tags[co], "error")
				end
				csend(req_source[co], ERROR, s, "")
			end
			req_session[co] = nil
		end
		req_source[co] = nil
		trace_tags[co] = nil
		skynet.fork(nop)	-- its end runs the pending wakeups and failures
		local msg = traceback(co, tostring(command))
		close_thread(co)
		error(msg)
	end
	if command == "SUSPEND" then
		return dispatch_wakeup()
	elseif command == "QUIT" then
		close_thread(co)
	elseif command == "USER" then
		error("Call skynet.coroutine.yield out of skynet.coroutine.resume\n" .. traceback(co))
	elseif command ~= nil then
		error("Unknown command : " .. command .. "\n" .. traceback(co))
	end
end

-- Handler of PTYPE_ERROR.  Session 0 means `source` is gone: forget the
-- answers we owe it and fail every call waiting for it.
local function error_dispatch(session, source)
	req_session[current] = nil	-- an error report is never answered
	if session == 0 then
		for resp, addr in pairs(pending_resp) do
			if addr == source then
				pending_resp[resp] = nil
			end
		end
		for s, addr in pairs(watching) do
			if addr == source then
				failed[#failed + 1] = s
			end
		end
	elseif watching[session] then
		failed[#failed + 1] = session
	end
end

---------------------------------------------------------------- timers

function skynet.timeout(ti, func)
	local session = fresh(core.intcommand("TIMEOUT", ti))
	assert(session)
	local co = spawn(func, ti)
	assert(waiting[session] == nil)
	waiting[session] = co
	return co
end

local function park(session, token)
	if tracing and trace_tags[current] then
		ctrace(trace_tags[current], "sleep", 2)
	end
	waiting[session] = current
	assert(sleeping[token] == nil, "token duplicative")
	sleeping[token] = session
	return yield "SUSPEND"
end

function skynet.sleep(ti, token)
	local session = fresh(core.intcommand("TIMEOUT", ti))
	assert(session)
	token = token or this_thread()
	local ok, why = park(session, token)
	sleeping[token] = nil
	if ok then
		return
	elseif why == "BREAK" then
		return "BREAK"
	end
	error(why)
end

function skynet.yield()
	return skynet.sleep(0)
end

function skynet.wait(token)
	local session = fresh(core.genid())
	token = token or this_thread()
	park(session, token)
	sleeping[token] = nil
	waiting[session] = nil
end

function skynet.wakeup(token)
	if sleeping[token] then
		wake_list[#wake_list + 1] = token
		return true
	end
end

---------------------------------------------------------------- basics

local self_handle
function skynet.self()
	if self_handle == nil then
		self_handle = core.addresscommand "REG"
	end
	return self_handle
end

function skynet.address(addr)
	if type(addr) == "number" then
		return string.format(":%08x", addr)
	end
	return tostring(addr)
end

function skynet.getenv(key)
	return (core.command("GETENV", key))
end

skynet.now = core.now
skynet.hpc = core.hpc	-- nanoseconds, monotonic
skynet.harbor = core.harbor
skynet.genid = assert(core.genid)
skynet.pack = assert(core.pack)
skynet.packstring = assert(core.packstring)
skynet.unpack = assert(core.unpack)
skynet.tostring = assert(core.tostring)
skynet.trash = assert(core.trash)
skynet.error = core.error
skynet.tracelog = core.trace
skynet.init = modload.init
skynet.pcall = pcall	-- kept for old code

function skynet.memlimit(bytes)
	debug.getregistry().memlimit = bytes
	skynet.memlimit = nil	-- only once, before start
end

---------------------------------------------------------------- exit
-- Kept here (not on demand): exit must work even when memory is short.

function skynet.exit()
	forks = {}	-- nothing forked may run after exit
	fork_head, fork_tail = 1, 0
	skynet.send(".launcher", "lua", "REMOVE", skynet.self(), false)
	-- fail the requests being served
	for co, s in pairs(req_session) do
		local addr = req_source[co]
		if s ~= 0 and addr then
			csend(addr, ERROR, s, "")
		end
	end
	-- unwind every suspended thread (runs its to-be-closed variables)
	for _, co in pairs(waiting) do
		if type(co) == "thread" and co ~= current then
			close_thread(co)
		end
	end
	for resp in pairs(pending_resp) do
		resp(false)
	end
	-- tell the services we still wait for that we are gone
	local callees = {}
	for _, addr in pairs(watching) do
		callees[addr] = true
	end
	for addr in pairs(callees) do
		csend(addr, ERROR, 0, "")
	end
	core.callback(function(_, _, _, session, source)
		if session ~= 0 and source ~= 0 then
			csend(source, ERROR, session, "")
		end
	end)
	core.command "EXIT"
	yield "QUIT"
end

---------------------------------------------------------------- messages

function skynet.send(addr, typename, ...)
	local p = protocols[typename]
	return csend(addr, p.id, 0, p.pack(...))
end

-- Suspends until the answer of `session`; raises "call failed" on ERROR.
local function wait_reply(addr, session)
	watching[session] = addr
	waiting[session] = current
	local ok, msg, sz = yield "SUSPEND"
	watching[session] = nil
	if not ok then
		error "call failed"
	end
	return msg, sz
end

function skynet.call(addr, typename, ...)
	local tag = tracing and trace_tags[current]
	if tag then
		ctrace(tag, "call", 2)
		csend(addr, TRACE, 0, tag)
	end
	local p = protocols[typename]
	local session = csend(addr, p.id, nil, p.pack(...))
	if session then
		if waiting[session < LAST_SESSION and session + 1 or 1] ~= nil then
			fresh(session)
		end
	elseif session == nil then
		error("call to invalid address " .. skynet.address(addr))
	end
	return p.unpack(wait_reply(addr, session))
end

function skynet.ret(msg, sz)
	msg = msg or ""
	local co = current
	if tracing and trace_tags[co] then
		ctrace(trace_tags[co], "response")
	end
	local s = req_session[co]
	if s == nil then
		error "No session"
	end
	req_session[co] = nil
	if s == 0 then
		if sz ~= nil then
			core.trash(msg, sz)
		end
		return false	-- a plain send expects no answer
	end
	local addr = req_source[co]
	local sent = csend(addr, RESPONSE, s, msg, sz)
	if sent then
		return true
	elseif sent == false then
		csend(addr, ERROR, s, "")	-- too large: fail the caller instead
	end
	return false
end

function skynet.retpack(...)
	return skynet.ret(skynet.pack(...))
end

function skynet.dispatch(typename, func)
	local p = protocols[typename]
	if func then
		local old = p.dispatch
		p.dispatch = func
		return old
	end
	return p and p.dispatch
end

-- Default handler of unknown requests (prototype given) and of responses
-- to unknown sessions (prototype nil).
local function unknown_message(session, address, msg, sz, prototype)
	if prototype then
		skynet.error(string.format("Unknown request (%s): %s", prototype, core.tostring(msg, sz)))
	else
		skynet.error(string.format("Response message : %s", core.tostring(msg, sz)))
	end
	error(string.format("Unknown session : %d from %x", session, address))
end
unknown_request, unknown_response = unknown_message, unknown_message

function skynet.fork(func, ...)
	local n = select("#", ...)
	local co
	if n == 0 then
		co = co_create(func)
	else
		local args = { ... }
		co = co_create(function() func(table.unpack(args, 1, n)) end)
	end
	fork_tail = fork_tail + 1
	forks[fork_tail] = co
	return co
end

local function raw_dispatch(prototype, msg, sz, session, source)
	if prototype == RESPONSE then
		local co = waiting[session]
		if co == "BREAK" then
			waiting[session] = nil
		elseif co == nil then
			unknown_response(session, source, msg, sz)
		else
			if tracing and trace_tags[co] then
				ctrace(trace_tags[co], "resume")
			end
			waiting[session] = nil
			current = co
			return suspend(co, raw_resume(co, true, msg, sz, session))
		end
		return
	end
	local p = protocols[prototype]
	if p then
		local f = p.dispatch
		if f then
			local n, co = #idle, nil
			if n > 0 then
				co = idle[n]
				idle[n] = nil
			else
				co = new_thread(worker_main)
			end
			req_session[co] = session
			req_source[co] = source
			if tracing then
				inner.trace_request(co, p, source)
			end
			current = co
			return suspend(co, raw_resume(co, f, session, source, p.unpack(msg, sz)))
		end
		-- registered, but nobody handles it
		if tracing then
			inner.trace_from[source] = nil
		end
		if session ~= 0 then
			csend(source, ERROR, session, "")
		else
			unknown_request(session, source, msg, sz, p.name)
		end
	elseif prototype == TRACE then
		-- the next request from `source` carries this trace tag
		internals().trace_from[source] = core.tostring(msg, sz)
		tracing = true
	elseif session ~= 0 then
		csend(source, ERROR, session, "")
	else
		unknown_request(session, source, msg, sz, prototype)
	end
end

-- The message callback: dispatch, then run the forked threads in order.
function skynet.dispatch_message(...)
	local ok, err = pcall(raw_dispatch, ...)
	while fork_head <= fork_tail do
		local h = fork_head
		local co = forks[h]
		forks[h] = nil
		fork_head = h + 1
		current = co
		local fok, ferr = pcall(suspend, co, raw_resume(co))
		if not fok then
			if ok then
				ok, err = false, tostring(ferr)
			else
				err = tostring(err) .. "\n" .. tostring(ferr)
			end
		end
	end
	if fork_tail ~= 0 then
		fork_head, fork_tail = 1, 0
	end
	if not ok then
		error(tostring(err), 0)
	end
end

---------------------------------------------------------------- startup

skynet.register_protocol {
	name = "lua",
	id = skynet.PTYPE_LUA,
	pack = skynet.pack,
	unpack = skynet.unpack,
}

skynet.register_protocol {
	name = "response",
	id = skynet.PTYPE_RESPONSE,
}

skynet.register_protocol {
	name = "error",
	id = skynet.PTYPE_ERROR,
	unpack = function(...) return ... end,
	dispatch = error_dispatch,
}

function skynet.init_service(start)
	local ok, err = xpcall(function()
		modload.init_all()
		start()
	end, traceback)
	if ok then
		skynet.send(".launcher", "lua", "LAUNCHOK")
	else
		skynet.error("init service failed: " .. tostring(err))
		skynet.send(".launcher", "lua", "ERROR")
		skynet.exit()
	end
end

function skynet.start(start_func)
	core.callback(skynet.dispatch_message)
	init_thread = skynet.timeout(0, function()
		skynet.init_service(start_func)
		init_thread = nil
	end)
end

---------------------------------------------------------------- on demand

-- What skynet/debug.lua gets: the internal state, and `control` to read or
-- change the internal variables.

local function control(op, v)
	if op == "running" then
		return current
	elseif op == "set_running" then
		current = v
	elseif op == "init_thread" then
		return init_thread
	elseif op == "tracing" then
		tracing = true
	elseif op == "spawn" then
		spawn = v
	elseif op == "unknown_request" then
		local old = unknown_request
		unknown_request = v
		return old
	elseif op == "unknown_response" then
		local old = unknown_response
		unknown_response = v
		return old
	elseif op == "unfork" then	-- remove thread v from the fork queue
		for i = fork_head, fork_tail do
			if forks[i] == v then
				table.move(forks, i + 1, fork_tail, i)
				forks[fork_tail] = nil
				fork_tail = fork_tail - 1
				return true
			end
		end
	end
end

function internals()
	if inner == nil then
		local extension = require "skynet.debug"
		if inner == nil then	-- (require may have waited for another thread)
			inner = {
				skynet = skynet, proto = protocols, control = control,
				waiting = waiting, watching = watching, sleeping = sleeping,
				req_session = req_session, req_source = req_source,
				pending_resp = pending_resp, trace_tags = trace_tags,
				fresh = fresh, co_create = co_create, suspend = suspend,
				wait_reply = wait_reply,
				dispatch = skynet.dispatch_message,
				error_dispatch = error_dispatch, nop = nop,
			}
			setmetatable(skynet, nil)
			extension.extend(inner)
		end
	end
	return inner
end

setmetatable(skynet, {
	__index = function(t, key)
		internals()
		return rawget(t, key)
	end,
})

skynet.register_protocol {
	name = "debug",
	id = skynet.PTYPE_DEBUG,
	pack = skynet.pack,
	unpack = skynet.unpack,
	dispatch = function(...)
		return require("skynet.debug").init(skynet, internals())(...)
	end,
}

return skynet
