-- skynet: the Lua side of a service, and the skynet API.
--
-- Message handlers run inside pooled coroutines ("workers").  A worker that
-- must wait (call, sleep, wait, ...) records what it waits for in `waiting`
-- (session -> thread) and yields "SUSPEND" to the dispatcher, which resumes
-- it when the matching RESPONSE or ERROR arrives.
--
-- Memory matters: every service has its own Lua state.  The code of this
-- file exists once per process (the code cache shares its prototypes), but
-- each service makes its own closures of it.  So what nearly every service
-- uses is made when the module loads (and exit, which must work even when
-- memory is short); the less used part of the API (rawcall, response,
-- newservice, request/select, task listings, tracing, ...) is defined in
-- install_on_demand at the end of this file and made the first time the
-- service reads one of those fields.  skynet/debug.lua holds the commands of
-- the `debug` protocol.

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

local RESPONSE <const> = 1
local ERROR <const> = 7
local TRACE <const> = 12
local LAST_SESSION <const> = 0x7fffffff

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
local new_timer	-- makes what skynet.timeout waits with (see trace_timeout)
local timer_origin	-- timer or thread -> where its skynet.timeout was set (trace_timeout)
local unknown_request, unknown_response
local install_on_demand	-- makes the less used part of the API (see "on demand")
local trace_from, trace_request	-- made by install_on_demand

---------------------------------------------------------------- sessions
-- The kernel hands out sessions 1..0x7fffffff and then wraps to 1, so an
-- old session may still be pending when its number comes round again.
-- Invariant: the session the kernel hands out next is never one we still
-- wait for.  Each time we obtain a session, sessions are burnt (genid) while
-- the following one is busy.

-- Returns s, a session just obtained, once the session the kernel hands out
-- next is one nobody waits for (burning the busy ones).
local function keep_next_free(s)
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

-- A timeout waits as a small table holding its function; the thread that
-- runs it is taken when it fires. (A thread per pending timeout made every
-- collection walk them all: 100k pending timeouts meant pauses of tens of
-- ms.) skynet.timeout returns this table; killthread and task take it as
-- they take a thread.
local timer_mt = { __name = "timer" }
local function plain_timer(func)
	return setmetatable({ func }, timer_mt)
end
new_timer = plain_timer

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
	local session = keep_next_free(core.intcommand("TIMEOUT", ti))
	assert(session)
	local timer = new_timer(func, ti)
	assert(waiting[session] == nil)
	waiting[session] = timer
	return timer
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
	local session = keep_next_free(core.intcommand("TIMEOUT", ti))
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
	local session = keep_next_free(core.genid())
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
			keep_next_free(session)
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
			if getmetatable(co) == timer_mt then	-- a timeout fires
				if timer_origin then
					timer_origin[co] = nil
				end
				co = co_create(co[1])
			end
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
				trace_request(co, p, source)
			end
			current = co
			return suspend(co, raw_resume(co, f, session, source, p.unpack(msg, sz)))
		end
		-- registered, but nobody handles it
		if tracing then
			trace_from[source] = nil
		end
		if session ~= 0 then
			csend(source, ERROR, session, "")
		else
			unknown_request(session, source, msg, sz, p.name)
		end
	elseif prototype == TRACE then
		-- the next request from `source` carries this trace tag
		install_on_demand()
		trace_from[source] = core.tostring(msg, sz)
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
	skynet.timeout(0, function()
		init_thread = this_thread()
		skynet.init_service(start_func)
		init_thread = nil
	end)
end

---------------------------------------------------------------- on demand
-- The less used part of the API.  Nothing here is made when the module
-- loads: install_on_demand runs the first time the service reads a field
-- missing from the module (the metatable at the end), gets a TRACE message
-- or a `debug` message.

local installed = false
local debug_dispatch	-- handler of the `debug` protocol, from skynet.debug

function install_on_demand()
	if installed then
		return
	end
	local debug_protocol = require "skynet.debug"
	if installed then	-- (require may have waited for another thread)
		return
	end
	installed = true
	setmetatable(skynet, nil)

	-- resumes a thread, making it the running skynet thread
	local function resume_as_current(co, ...)
		current = co
		return coroutine.resume(co, ...)
	end

	-------------------------------------------------------- messages

	function skynet.rawsend(addr, typename, msg, sz)
		return csend(addr, protocols[typename].id, 0, msg, sz)
	end

	function skynet.redirect(dest, source, typename, ...)
		return core.redirect(dest, source, protocols[typename].id, ...)
	end

	-- like skynet.call, without pack/unpack
	function skynet.rawcall(addr, typename, msg, sz)
		local tag = trace_tags[current]
		if tag then
			ctrace(tag, "call", 2)
			csend(addr, TRACE, 0, tag)
		end
		local p = protocols[typename]
		local session = assert(keep_next_free(csend(addr, p.id, nil, msg, sz)), "call to invalid address")
		return wait_reply(addr, session)
	end

	-- a raw call traced with an explicit tag (used by cluster agents)
	function skynet.tracecall(tag, addr, typename, msg, sz)
		ctrace(tag, "tracecall begin")
		csend(addr, TRACE, 0, tag)
		local p = protocols[typename]
		local session = assert(keep_next_free(csend(addr, p.id, nil, msg, sz)), "call to invalid address")
		msg, sz = wait_reply(addr, session)
		ctrace(tag, "tracecall end")
		return msg, sz
	end

	function skynet.context()
		return req_session[current], req_source[current]
	end

	function skynet.ignoreret()
		req_session[current] = nil
	end

	-- Takes over the current request; the returned closure answers it later:
	-- resp(true, ...) replies, resp(false) fails the caller, resp("TEST")
	-- tells whether the answer is still expected.
	function skynet.response(pack)
		pack = pack or skynet.pack
		local co = current
		local session = assert(req_session[co], "no session")
		req_session[co] = nil
		local addr = req_source[co]
		if session == 0 then
			return nop	-- a plain send: nobody to answer
		end
		local function response(ok, ...)
			if ok == "TEST" then
				return pending_resp[response] ~= nil
			end
			if not pack then
				error "Can't response more than once"
			end
			local sent
			if pending_resp[response] then
				if ok then
					sent = csend(addr, RESPONSE, session, pack(...))
					if sent == false then
						csend(addr, ERROR, session, "")	-- too large
					end
				else
					sent = csend(addr, ERROR, session, "")
				end
				pending_resp[response] = nil
				sent = sent ~= nil
			else
				sent = false	-- the caller is gone
			end
			pack = nil
			return sent
		end
		pending_resp[response] = addr
		return response
	end

	function skynet.dispatch_unknown_request(f)
		local old = unknown_request
		unknown_request = f
		return old
	end

	function skynet.dispatch_unknown_response(f)
		local old = unknown_response
		unknown_response = f
		return old
	end

	-- acts as if `service` had exited: fails the calls waiting for it
	function skynet.term(service)
		return error_dispatch(0, service)
	end

	-------------------------------------------------------- environment, services

	function skynet.localname(name)
		return core.addresscommand("QUERY", name)
	end

	local boot_time
	function skynet.starttime()
		if not boot_time then
			boot_time = core.intcommand "STARTTIME"
		end
		return boot_time
	end

	function skynet.time()
		return skynet.now() / 100 + (boot_time or skynet.starttime())
	end

	function skynet.setenv(key, value)
		assert(core.command("GETENV", key) == nil, "Can't setenv exist key : " .. key)
		core.command("SETENV", key .. " " .. value)
	end

	function skynet.newservice(name, ...)
		return skynet.call(".launcher", "lua", "LAUNCH", "snlua", name, ...)
	end

	-- a first argument `true` selects the node-spanning (global) variant;
	-- otherwise it is the service name
	function skynet.uniqueservice(global_or_name, ...)
		if global_or_name == true then
			return assert(skynet.call(".service", "lua", "GLAUNCH", ...))
		end
		return assert(skynet.call(".service", "lua", "LAUNCH", global_or_name, ...))
	end

	function skynet.queryservice(global_or_name, ...)
		if global_or_name == true then
			return assert(skynet.call(".service", "lua", "GQUERY", ...))
		end
		return assert(skynet.call(".service", "lua", "QUERY", global_or_name, ...))
	end

	function skynet.endless()
		return core.intcommand("STAT", "endless") == 1
	end

	function skynet.mqlen()
		return core.intcommand("STAT", "mqlen")
	end

	function skynet.stat(what)
		return core.intcommand("STAT", what)
	end

	-------------------------------------------------------- request/select

	-- sends every request; returns the list of those that could not be sent
	local function post_all(self)
		local sessions = {}
		self._sessions = sessions
		local count, bad = 0, nil
		for i = 1, #self do
			local req = self[i]
			local addr = req[1]
			local p = protocols[req[2]]
			assert(p.unpack)
			local tag = trace_tags[current]
			if tag then
				ctrace(tag, "call", 4)
				csend(addr, TRACE, 0, tag)
			end
			local s = keep_next_free(csend(addr, p.id, nil, p.pack(table.unpack(req, 3, req.n))))
			if s == nil then
				bad = bad or {}
				bad[#bad + 1] = req
			else
				sessions[s] = req
				watching[s] = addr
				waiting[s] = self._thread
				count = count + 1
			end
		end
		self._request = count
		return bad
	end

	-- body of the thread receiving every reply (and the timeout) of a select
	local function collect(self)
		while true do
			local ok, msg, sz, s = yield "SUSPEND"
			if s == self._timeout then
				self._timeout = nil
				self.timeout = true
			else
				watching[s] = nil
				local p = protocols[self._sessions[s][2]]
				if ok then
					self._resp[s] = table.pack(p.unpack(msg, sz))
				else
					self._resp[s] = false
				end
			end
			skynet.wakeup(self)
		end
	end

	local function iterator(self)
		return function()
			local bad = self._error
			if bad then
				local req = tremove(bad)
				if req then
					return req	-- invalid address: no answer
				end
				self._error = nil
			end
			local results = self._resp
			local s, resp = next(results)
			if s == nil then
				if self._request == 0 or self.timeout then
					return
				end
				skynet.wait(self)
				if self.timeout then
					return
				end
				s, resp = next(results)
			end
			self._request = self._request - 1
			local req = self._sessions[s]
			results[s] = nil
			self._sessions[s] = nil
			return req, resp
		end
	end

	local request_meta = {}
	request_meta.__index = request_meta

	function request_meta:add(obj)
		assert(type(obj) == "table" and not self._thread)
		self[#self + 1] = obj
		return self
	end
	request_meta.__call = request_meta.add

	-- abandon what is still outstanding: late replies are dropped silently
	function request_meta:close()
		if self._request > 0 then
			local results = self._resp
			for s in pairs(self._sessions) do
				if not results[s] then
					waiting[s] = "BREAK"
					watching[s] = nil
				end
			end
			self._request = 0
		end
		local t = self._timeout
		if t then
			waiting[t] = "BREAK"
			self._timeout = nil
		end
	end
	request_meta.__close = request_meta.close

	function request_meta:select(timeout)
		assert(self._thread == nil)
		local thread = coroutine.create(collect)
		self._thread = thread
		self._error = post_all(self)
		self._resp = {}
		if timeout then
			local t = keep_next_free(core.intcommand("TIMEOUT", timeout))
			self._timeout = t
			waiting[t] = thread
		end
		local running = current
		resume_as_current(thread, self)
		current = running
		return iterator(self), nil, nil, self
	end

	function skynet.request(obj)
		local req = setmetatable({}, request_meta)
		if obj then
			return req(obj)
		end
		return req
	end

	-------------------------------------------------------- threads

	-- takes a forked thread that has not run yet out of the fork queue
	local function unfork(co)
		for i = fork_head, fork_tail do
			if forks[i] == co then
				table.move(forks, i + 1, fork_tail, i)
				forks[fork_tail] = nil
				fork_tail = fork_tail - 1
				return true
			end
		end
	end

	-- Cancels a suspended thread (given as a thread, or a pattern matched
	-- against tostring(thread)).  Returns it, or nil if not found.
	function skynet.killthread(thread)
		local session
		if type(thread) == "string" then
			for s, co in pairs(waiting) do
				if tostring(co):find(thread) then
					session = s
					break
				end
			end
		else
			if unfork(thread) then
				return thread
			end
			for s, co in pairs(waiting) do
				if co == thread then
					session = s
					break
				end
			end
		end
		local co = session and waiting[session]
		if getmetatable(co) == timer_mt then	-- a timeout not yet fired
			waiting[session] = "BREAK"
			if timer_origin then
				timer_origin[co] = nil
			end
			return co
		end
		if type(co) ~= "thread" then
			return
		end
		local addr = req_source[co]
		if addr then
			req_source[co] = nil
			trace_tags[co] = nil
			local s = req_session[co]
			if s and s > 0 then
				csend(addr, ERROR, s, "")
			end
			req_session[co] = nil
		end
		if watching[session] then
			waiting[session] = "BREAK"
			watching[session] = nil
		else
			waiting[session] = nil
		end
		for token, s in pairs(sleeping) do
			if s == session then
				sleeping[token] = nil
				break
			end
		end
		coroutine.close(co)
		return co
	end

	local function where(co)
		if co == "BREAK" then
			return co
		end
		if timer_origin and timer_origin[co] then
			return timer_origin[co]
		end
		if getmetatable(co) == timer_mt then
			return "timer (not fired yet)"
		end
		return traceback(co)
	end

	-- nil: number of suspended threads; "init": traceback of the start
	-- function; a table: filled with "<thread> session: <n>" -> traceback;
	-- a session: its traceback; a thread: its session.
	function skynet.task(ret)
		if ret == nil then
			local n = 0
			for _, co in pairs(waiting) do
				if co ~= "BREAK" then
					n = n + 1
				end
			end
			return n
		end
		if ret == "init" then
			if init_thread then
				return traceback(init_thread)
			end
			return
		end
		local kind = type(ret)
		if getmetatable(ret) == timer_mt then	-- a timeout not fired: its session
			kind = "thread"
		end
		if kind == "table" then
			for s, co in pairs(waiting) do
				ret[string.format("%s session: %d", tostring(co), s)] = where(co)
			end
		elseif kind == "number" then
			local co = waiting[ret]
			if co then
				return where(co)
			end
			return "No session"
		elseif kind == "thread" then
			for s, co in pairs(waiting) do
				if co == ret then
					return s
				end
			end
		end
	end

	-- suspended threads grouped by identical traceback
	function skynet.uniqtask()
		local groups = {}
		for s, co in pairs(waiting) do
			local stack = where(co)
			local g = groups[stack]
			if g == nil then
				g = { n = 0, sessions = {} }
				groups[stack] = g
			end
			g.n = g.n + 1
			if g.n < 10 then
				g.sessions[#g.sessions + 1] = s
			end
		end
		local result = {}
		for stack, g in pairs(groups) do
			local list = table.concat(g.sessions, ",")
			if g.n > 10 then
				list = list .. "..."
			end
			result[string.format("%d\tsessions:[%s]\n", g.n, list)] = stack
		end
		return result
	end

	-- Remember where each skynet.timeout was set, for task listings.
	function skynet.trace_timeout(on)
		if on then
			local origin = timer_origin or {}
			timer_origin = origin
			new_timer = function(func, ti)
				local timer = plain_timer(func)
				origin[timer] = traceback(string.format("TIMER %d+%d : ", skynet.now(), ti), 3)
				return timer
			end
		else
			timer_origin = nil
			new_timer = plain_timer
		end
	end

	-------------------------------------------------------- tracing

	local serial = 0
	trace_from = {}	-- source -> tag announced for its next request

	function skynet.tracetag()
		return trace_tags[current]
	end

	-- called by the dispatcher for each request once tracing is in use
	function trace_request(co, p, source)
		local flag = p.trace
		if flag == false then
			trace_from[source] = nil
			trace_tags[co] = false
			return
		end
		local tag = trace_from[source]
		if tag then
			trace_from[source] = nil
			ctrace(tag, "request")
			trace_tags[co] = tag
		elseif flag then
			current = co
			skynet.trace()
		end
	end

	-- Starts tracing the current message (logs through skynet.tracelog).
	function skynet.trace(info)
		tracing = true
		local co = current
		skynet.error("TRACE", trace_tags[co])
		if trace_tags[co] == false then
			return	-- tracing forced off for this protocol
		end
		serial = serial + 1
		local tag = string.format(":%08x-%d", skynet.self(), serial)
		trace_tags[co] = tag
		if info then
			ctrace(tag, "trace " .. info)
		else
			ctrace(tag, "trace")
		end
	end

	-- flag true: trace every message of the protocol; false: never;
	-- nil: only when skynet.trace() is called
	function skynet.traceproto(prototype, flag)
		local p = assert(protocols[prototype])
		p.trace = flag
		tracing = true
	end

	-------------------------------------------------------- debug protocol

	debug_dispatch = debug_protocol.init(skynet, {
		dispatch = skynet.dispatch_message,
		suspend = suspend,
		resume = resume_as_current,
	})
end

setmetatable(skynet, {
	__index = function(t, key)
		install_on_demand()
		return rawget(t, key)
	end,
})

-- Every service answers the `debug` protocol; its commands (skynet.debug)
-- are made on the first debug message.
skynet.register_protocol {
	name = "debug",
	id = skynet.PTYPE_DEBUG,
	pack = skynet.pack,
	unpack = skynet.unpack,
	dispatch = function(...)
		install_on_demand()
		protocols.debug.dispatch = debug_dispatch
		return debug_dispatch(...)
	end,
}

return skynet
