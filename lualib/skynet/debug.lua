-- skynet.debug: the `debug` protocol commands, and the less used part of the
-- skynet API.
--
-- skynet.lua keeps only what nearly every service needs.  The first time a
-- service reads another field of the skynet module, or receives a `debug`
-- message, skynet.lua compiles this file and calls extend(I), then init() for
-- the debug protocol.  `I` gives access to its internal state:
--   I.skynet, I.proto            the module and its protocol table
--   I.waiting                    session -> waiting thread, or "BREAK"
--   I.watching                   session of a pending call -> callee
--   I.sleeping                   wakeup token -> session
--   I.req_session, I.req_source  thread -> request it serves
--   I.pending_resp               response closure -> address
--   I.trace_tags                 thread -> trace tag
--   I.fresh(s)                   check a newly allocated session (wrap-around)
--   I.co_create(f)               pooled thread running f on its next resume
--   I.suspend, I.dispatch, I.error_dispatch, I.nop
--   I.control(op, v)             read/write internal variables: "running",
--                                "set_running", "init_thread", "tracing",
--                                "spawn", "unknown_request",
--                                "unknown_response", "unfork"
-- extend() adds to I what skynet.lua calls back: I.trace_from (source ->
-- announced trace tag), I.trace_request(co, p, source), and I.resume.
-- Public interface of this module: init, reg_debugcmd (as in skynet).

local core = require "skynet.core"

local fmt = string.format
local traceback = debug.traceback
local tremove = table.remove
local tunpack = table.unpack
local tpack = table.pack
local pairs, next, type, tostring, assert, error = pairs, next, type, tostring, assert, error
local yield = coroutine.yield
local csend, ctrace = core.send, core.trace

local RESPONSE, ERROR, TRACE = 1, 7, 12

local extra_commands = {}	-- filled by reg_debugcmd
local info_provider	-- set by skynet.info_func, used by INFO

local M = {}

function M.reg_debugcmd(name, fn)
	extra_commands[name] = fn
end

---------------------------------------------------------------- messaging

local function install_messaging(I)
	local skynet, proto, control = I.skynet, I.proto, I.control
	local req_session, req_source = I.req_session, I.req_source
	local pending_resp, fresh = I.pending_resp, I.fresh

	function skynet.rawsend(addr, typename, msg, sz)
		return csend(addr, proto[typename].id, 0, msg, sz)
	end

	function skynet.redirect(dest, source, typename, ...)
		return core.redirect(dest, source, proto[typename].id, ...)
	end

	-- like skynet.call, without pack/unpack
	function skynet.rawcall(addr, typename, msg, sz)
		local tag = I.trace_tags[control "running"]
		if tag then
			ctrace(tag, "call", 2)
			csend(addr, TRACE, 0, tag)
		end
		local p = proto[typename]
		local session = assert(fresh(csend(addr, p.id, nil, msg, sz)), "call to invalid address")
		return I.wait_reply(addr, session)
	end

	-- a raw call traced with an explicit tag (used by cluster agents)
	function skynet.tracecall(tag, addr, typename, msg, sz)
		ctrace(tag, "tracecall begin")
		csend(addr, TRACE, 0, tag)
		local p = proto[typename]
		local session = assert(fresh(csend(addr, p.id, nil, msg, sz)), "call to invalid address")
		msg, sz = I.wait_reply(addr, session)
		ctrace(tag, "tracecall end")
		return msg, sz
	end

	function skynet.context()
		local co = control "running"
		return req_session[co], req_source[co]
	end

	function skynet.ignoreret()
		req_session[control "running"] = nil
	end

	-- Takes over the current request; the returned closure answers it later:
	-- resp(true, ...) replies, resp(false) fails the caller, resp("TEST")
	-- tells whether the answer is still expected.
	function skynet.response(pack)
		pack = pack or skynet.pack
		local co = control "running"
		local session = assert(req_session[co], "no session")
		req_session[co] = nil
		local addr = req_source[co]
		if session == 0 then
			return I.nop	-- a plain send: nobody to answer
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
		return control("unknown_request", f)
	end

	function skynet.dispatch_unknown_response(f)
		return control("unknown_response", f)
	end

	function skynet.term(service)
		return I.error_dispatch(0, service)
	end

	function skynet.info_func(f)
		info_provider = f
	end
end

---------------------------------------------------------------- environment

local function install_environment(I)
	local skynet = I.skynet

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

	-- a first argument `true` selects the node-spanning (global) variant
	function skynet.uniqueservice(scope, ...)
		if scope == true then
			return assert(skynet.call(".service", "lua", "GLAUNCH", ...))
		end
		return assert(skynet.call(".service", "lua", "LAUNCH", scope, ...))
	end

	function skynet.queryservice(scope, ...)
		if scope == true then
			return assert(skynet.call(".service", "lua", "GQUERY", ...))
		end
		return assert(skynet.call(".service", "lua", "QUERY", scope, ...))
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
end

---------------------------------------------------------------- request/select

local function install_request(I)
	local skynet, proto, control = I.skynet, I.proto, I.control
	local waiting, watching, fresh = I.waiting, I.watching, I.fresh

	-- sends every request; returns the list of those that could not be sent
	local function post_all(self)
		local sessions = {}
		self._sessions = sessions
		local count, bad = 0, nil
		for i = 1, #self do
			local req = self[i]
			local addr = req[1]
			local p = proto[req[2]]
			assert(p.unpack)
			local tag = I.trace_tags[control "running"]
			if tag then
				ctrace(tag, "call", 4)
				csend(addr, TRACE, 0, tag)
			end
			local s = fresh(csend(addr, p.id, nil, p.pack(tunpack(req, 3, req.n))))
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
				local p = proto[self._sessions[s][2]]
				if ok then
					self._resp[s] = tpack(p.unpack(msg, sz))
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

	local meta = {}
	meta.__index = meta

	function meta:add(obj)
		assert(type(obj) == "table" and not self._thread)
		self[#self + 1] = obj
		return self
	end
	meta.__call = meta.add

	-- abandon what is still outstanding: late replies are dropped silently
	function meta:close()
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
	meta.__close = meta.close

	function meta:select(timeout)
		assert(self._thread == nil)
		local thread = coroutine.create(collect)
		self._thread = thread
		self._error = post_all(self)
		self._resp = {}
		if timeout then
			local t = fresh(core.intcommand("TIMEOUT", timeout))
			self._timeout = t
			waiting[t] = thread
		end
		local running = control "running"
		I.resume(thread, self)
		control("set_running", running)
		return iterator(self), nil, nil, self
	end

	function skynet.request(obj)
		local req = setmetatable({}, meta)
		if obj then
			return req(obj)
		end
		return req
	end
end

---------------------------------------------------------------- threads

local function install_threads(I)
	local skynet, control = I.skynet, I.control
	local waiting, watching, sleeping = I.waiting, I.watching, I.sleeping
	local req_session, req_source = I.req_session, I.req_source
	local timer_origin	-- thread -> traceback where skynet.timeout was called

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
			if control("unfork", thread) then
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
		if type(co) ~= "thread" then
			return
		end
		local addr = req_source[co]
		if addr then
			req_source[co] = nil
			I.trace_tags[co] = nil
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
		return timer_origin and timer_origin[co] or traceback(co)
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
			local co = control "init_thread"
			if co then
				return traceback(co)
			end
			return
		end
		local kind = type(ret)
		if kind == "table" then
			for s, co in pairs(waiting) do
				ret[fmt("%s session: %d", tostring(co), s)] = where(co)
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
			result[fmt("%d\tsessions:[%s]\n", g.n, list)] = stack
		end
		return result
	end

	-- Remember where each skynet.timeout was set, for task listings.
	function skynet.trace_timeout(on)
		if on then
			local origin = timer_origin or {}
			timer_origin = origin
			control("spawn", function(func, ti)
				local co
				co = I.co_create(function()
					origin[co] = nil
					func()
				end)
				origin[co] = traceback(fmt("TIMER %d+%d : ", skynet.now(), ti), 3)
				return co
			end)
		else
			timer_origin = nil
			control("spawn", I.co_create)
		end
	end
end

---------------------------------------------------------------- tracing

local function install_trace(I)
	local skynet, control, trace_tags = I.skynet, I.control, I.trace_tags
	local trace_from = {}	-- source -> tag announced for its next request
	I.trace_from = trace_from
	local serial = 0

	function skynet.tracetag()
		return trace_tags[control "running"]
	end

	-- called by the dispatcher for each request once tracing is in use
	function I.trace_request(co, p, source)
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
			control("set_running", co)
			skynet.trace()
		end
	end

	-- Starts tracing the current message (logs through skynet.tracelog).
	function skynet.trace(info)
		control "tracing"
		local co = control "running"
		skynet.error("TRACE", trace_tags[co])
		if trace_tags[co] == false then
			return	-- tracing forced off for this protocol
		end
		serial = serial + 1
		local tag = fmt(":%08x-%d", skynet.self(), serial)
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
		local p = assert(I.proto[prototype])
		p.trace = flag
		control "tracing"
	end
end

-- Installs the on-demand part of the API into I.skynet.
function M.extend(I)
	local waiting, watching, control = I.waiting, I.watching, I.control
	-- resume a thread, making it the running skynet thread
	function I.resume(co, ...)
		control("set_running", co)
		return coroutine.resume(co, ...)
	end
	install_messaging(I)
	install_environment(I)
	install_request(I)
	install_threads(I)
	install_trace(I)
end

---------------------------------------------------------------- commands

local function build_commands(skynet, I)
	local cmd = {}

	function cmd.MEM()
		skynet.ret(skynet.pack(collectgarbage "count"))
	end

	local collecting = false
	function cmd.GC()
		if collecting then
			return
		end
		collecting = true
		local before, t0 = collectgarbage "count", skynet.now()
		collectgarbage "collect"
		skynet.yield()	-- GC requests queued meanwhile are skipped
		local after, t1 = collectgarbage "count", skynet.now()
		skynet.error(fmt("GC %.2f Kb -> %.2f Kb, cost %.2f sec", before, after, (t1 - t0) / 100))
		collecting = false
	end

	function cmd.STAT()
		skynet.ret(skynet.pack {
			task = skynet.task(),
			mqlen = skynet.stat "mqlen",
			cpu = skynet.stat "cpu",
			message = skynet.stat "message",
		})
	end

	function cmd.KILLTASK(name)
		local co = skynet.killthread(name)
		if co then
			skynet.error(fmt("Kill %s", co))
			skynet.ret()
		else
			skynet.error(fmt("Kill %s : Not found", name))
			skynet.ret(skynet.pack "Not found")
		end
	end

	function cmd.TASK(session)
		if session then
			skynet.ret(skynet.pack(skynet.task(session)))
		else
			local list = {}
			skynet.task(list)
			skynet.ret(skynet.pack(list))
		end
	end

	function cmd.UNIQTASK()
		skynet.ret(skynet.pack(skynet.uniqtask()))
	end

	function cmd.INFO(...)
		if info_provider then
			skynet.ret(skynet.pack(info_provider(...)))
		else
			skynet.ret(skynet.pack(nil))
		end
	end

	function cmd.EXIT()
		skynet.exit()
	end

	function cmd.RUN(source, filename, ...)
		local inject = require "skynet.inject"
		local ok, output = inject(skynet, source, filename, tpack(...), I.dispatch, skynet.register_protocol)
		collectgarbage "collect"
		skynet.ret(skynet.pack(ok, table.concat(output, "\n")))
	end

	function cmd.TERM(service)
		skynet.term(service)
	end

	function cmd.REMOTEDEBUG(...)
		local ok, remotedebug = pcall(require, "skynet.remotedebug")
		if not ok then
			error("REMOTEDEBUG is not supported: " .. tostring(remotedebug))
		end
		remotedebug.start(I, ...)
	end

	function cmd.SUPPORT(pname)
		return skynet.ret(skynet.pack(skynet.dispatch(pname) ~= nil))
	end

	function cmd.PING()
		return skynet.ret()
	end

	function cmd.LINK()
		skynet.response()	-- never answered: the caller fails when we exit
	end

	function cmd.TRACELOG(proto, flag)
		if type(proto) ~= "string" then
			flag = proto
			proto = "lua"
		end
		skynet.error(fmt("Turn trace log %s for %s", flag, proto))
		skynet.traceproto(proto, flag)
		skynet.ret()
	end

	return cmd
end

-- Builds the command table and installs the dispatch function of the
-- `debug` protocol (registering the protocol if needed); returns it.
function M.init(skynet, I)
	local commands = build_commands(skynet, I)
	local function dispatch(_, _, name, ...)
		local f = commands[name] or extra_commands[name]
		assert(f, name)
		f(...)
	end
	local p = skynet._proto.debug
	if p then
		p.dispatch = dispatch
	else
		skynet.register_protocol {
			name = "debug",
			id = assert(skynet.PTYPE_DEBUG),
			pack = assert(skynet.pack),
			unpack = assert(skynet.unpack),
			dispatch = dispatch,
		}
	end
	return dispatch
end

return M
