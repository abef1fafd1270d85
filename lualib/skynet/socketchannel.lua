-- skynet.socketchannel: a client TCP connection that reconnects itself and
-- matches requests with responses.
--
--   local sc = require "skynet.socketchannel"
--   local c = sc.channel { host = "127.0.0.1", port = 8888,
--       response = f,        -- session mode: f(sock) -> session, ok, data [, padding]
--       backup = { "host" | {host=, port=} ... },
--       auth = function(channel) ... end,   -- runs after each (re)connect
--       nodelay = true, overload = function(is_overloaded) end,
--       socket_read = f, socket_readline = f }  -- replace sock:read / sock:readline
--   c:connect(once)
--   c:request(req [, response [, padding]]) -> data
--
-- Order mode (no desc.response): `response` is a function(sock) -> ok, data
-- [, padding]; responses are read in the order the requests were sent.
-- Session mode: `response` is the session the caller waits for; one
-- dispatcher reads every response with desc.response and wakes its owner.
-- A response (or a session) with padding = true is one part of a multi-part
-- answer; the caller then gets a table of the parts.
--
-- Each connection is a `link` with its own waiters and dispatcher. When a link
-- dies (peer closed, read error, write error, changehost, close) every caller
-- waiting on it is woken at once with an error: nobody waits for a response
-- that can no longer come. The next request connects again.

local skynet = require "skynet"
local socket = require "skynet.socket"
local driver = require "skynet.socketdriver"

local running = coroutine.running
local format = string.format
local setmetatable, pcall, error, type, ipairs, pairs, tostring =
	setmetatable, pcall, error, type, ipairs, pairs, tostring

local socketchannel = {}
local channel = {}
local channel_meta = { __index = channel }

-- The error every failed request raises unless a response function raised
-- its own: compare with socketchannel.error.
local socket_error = setmetatable({}, {
	__tostring = function()
		return "[Error: socket]"
	end,
})
socketchannel.error = socket_error

-- The object response and auth functions read from: sock[1] is the socket id.
local sock_methods = {}

local function checked(f)
	return function(sock, ...)
		local fd = sock[1]
		if not fd or socket.invalid(fd) then
			error(socket_error)
		end
		local r = f(fd, ...)
		if not r then
			error(socket_error)
		end
		return r
	end
end
sock_methods.read = checked(socket.read)
sock_methods.readline = checked(socket.readline)

local sock_meta = { __index = sock_methods }

function socketchannel.channel(desc)
	local c = {
		host = assert(desc.host, "socketchannel: desc.host missing"),
		port = desc.port,
		backup = desc.backup,
		auth = desc.auth,
		session_reader = desc.response,	-- session mode if set
		nodelay = desc.nodelay,
		overload_notify = desc.overload,
		overloaded = false,
		sock_meta = sock_meta,
		link = false,	-- the live connection
		closed = false,
		connect_waiters = false,	-- coroutines waiting for a connect under way
		auth_co = false,	-- the coroutine running auth (it may use the link)
		result = {},	-- co -> ok | socket_error
		result_data = {},	-- co -> data | error message
	}
	if desc.socket_read or desc.socket_readline then
		c.sock_meta = {
			__index = {
				read = desc.socket_read or sock_methods.read,
				readline = desc.socket_readline or sock_methods.readline,
			},
		}
	end
	return setmetatable(c, channel_meta)
end

---------------------------------------------------------------- links

local function new_link(self, fd)
	return {
		fd = fd,
		sock = setmetatable({ fd }, self.sock_meta),
		alive = true,
		sessions = {},	-- session mode: session -> co
		-- order mode: a FIFO of (response function, co)
		funcs = {},
		cos = {},
		head = 1,
		tail = 0,
		idle = false,	-- order mode: the dispatcher's co while nothing is pending
	}
end

local function fail(self, co, errmsg)
	self.result[co] = socket_error
	self.result_data[co] = errmsg
	skynet.wakeup(co)
end

-- Ends `link`: every caller waiting on it gets the error now, then the socket
-- is closed. Safe to call more than once.
local function kill(self, link, errmsg)
	if not link.alive then
		return
	end
	link.alive = false
	if self.link == link then
		self.link = false
	end
	local sessions = link.sessions
	for session, co in pairs(sessions) do
		sessions[session] = nil
		fail(self, co, errmsg)
	end
	local cos = link.cos
	for i = link.head, link.tail do
		local co = cos[i]
		cos[i] = nil
		link.funcs[i] = nil
		fail(self, co, errmsg)
	end
	link.head, link.tail = 1, 0
	if link.idle then
		local co = link.idle
		link.idle = false
		skynet.wakeup(co)
	end
	link.sock[1] = false
	-- socket.close may wait for the dispatcher to leave its read; never raise
	pcall(socket.close, link.fd)
end

-- An error value raised inside a response function: the sentinel means "the
-- socket failed" (no message), anything else is passed to the callers.
local function message_of(err)
	if err ~= socket_error then
		return err
	end
end

local function dispatch_by_session(self, link)
	local reader = self.session_reader
	local sessions = link.sessions
	local result, result_data = self.result, self.result_data
	while link.alive do
		local ok, session, rok, data, padding = pcall(reader, link.sock)
		if not (ok and session) then
			kill(self, link, message_of(session))
			return
		end
		local co = sessions[session]
		if co == nil then
			skynet.error("socket: unknown session :", session)
		elseif padding and rok then
			-- one part of a multi-part answer: collect it
			local parts = result_data[co]
			if parts == nil then
				parts = {}
				result_data[co] = parts
			end
			parts[#parts + 1] = data
		else
			sessions[session] = nil
			result[co] = rok
			local parts = result_data[co]
			if rok and parts then
				parts[#parts + 1] = data
			else
				result_data[co] = data
			end
			skynet.wakeup(co)
		end
	end
end

-- Order mode: reads one answer with `func`, following padding parts.
local function read_answer(func, sock)
	local ok, data, padding = func(sock)
	if not (ok and padding) then
		return ok, data
	end
	local parts = { data }
	repeat
		ok, data, padding = func(sock)
		if not ok then
			return ok, data
		end
		parts[#parts + 1] = data
	until not padding
	return true, parts
end

local function dispatch_by_order(self, link)
	local funcs, cos = link.funcs, link.cos
	local result, result_data = self.result, self.result_data
	while link.alive do
		local i = link.head
		if i > link.tail then
			link.head, link.tail = 1, 0	-- empty: reuse the low slots
			link.idle = running()
			skynet.wait(link.idle)
		else
			local func, co = funcs[i], cos[i]
			local ok, rok, data = pcall(read_answer, func, link.sock)
			if not link.alive then
				return	-- kill() has answered co already
			end
			funcs[i], cos[i] = nil, nil
			link.head = i + 1
			if not ok then
				fail(self, co, message_of(rok))
				kill(self, link, message_of(rok))
				return
			end
			result[co] = rok
			result_data[co] = data
			skynet.wakeup(co)
		end
	end
end

-- Order mode reads only while a request is pending, so an idle link learns
-- of the peer's close from the socket's close callback.
local function watch_close(self, link)
	socket.onclose(link.fd, function()
		if link.alive and link.idle then
			skynet.error("socket closed by peer : ", self.host, self.port)
			kill(self, link)
		end
	end)
end

local function watch_overload(self, link)
	local notify = self.overload_notify
	if not notify then
		return
	end
	if self.overloaded then	-- a new connection starts with an empty queue
		self.overloaded = false
		notify(false)
	end
	socket.warning(link.fd, function(id, size)
		if self.link ~= link then
			return
		end
		if size == 0 then
			if self.overloaded then
				self.overloaded = false
				notify(false)
			end
		elseif not self.overloaded then
			self.overloaded = true
			notify(true)
		else
			skynet.error(format("WARNING: %d K bytes need to send out (fd = %d)", size, id),
				self.host, self.port)
		end
	end)
end

---------------------------------------------------------------- connecting

-- The addresses to try after the main one: the backups, without repeats.
local function backup_list(self, seen)
	local list = {}
	for _, addr in ipairs(self.backup or {}) do
		local host, port
		if type(addr) == "table" then
			host, port = addr.host, addr.port
		else
			host, port = addr, self.port
		end
		local key = tostring(host) .. ":" .. tostring(port)
		if not seen[key] then
			seen[key] = true
			list[#list + 1] = { host = host, port = port }
		end
	end
	return list
end

local connect_once

-- Tries addr, then the backups in turn, until one connects and passes auth.
local function try_addresses(self, addr, rest)
	while not self.closed do
		local fd, err = socket.open(addr.host, addr.port)
		if self.closed then	-- close() while connecting
			if fd then
				socket.close(fd)
			end
			return false, "channel closed"
		end
		if fd then
			self.host, self.port = addr.host, addr.port
			if self.nodelay then
				driver.nodelay(fd)
			end
			local link = new_link(self, fd)
			self.link = link
			watch_overload(self, link)
			local dispatch
			if self.session_reader then
				dispatch = dispatch_by_session
			else
				watch_close(self, link)
				dispatch = dispatch_by_order
			end
			skynet.fork(dispatch, self, link)
			if not self.auth then
				return true
			end
			self.auth_co = running()
			local ok, msg = pcall(self.auth, self)
			self.auth_co = false
			if ok then
				if link.alive then
					return true
				end
				-- auth changed the host (or lost the link): start over
				return connect_once(self)
			end
			kill(self, link)
			if msg ~= socket_error then
				skynet.error("socket: auth failed", msg)
			end
			-- auth may have changed the backups
			local more = backup_list(self, rest.seen)
			for _, a in ipairs(more) do
				rest[#rest + 1] = a
			end
			err = "no more backup host"
		end
		addr = table.remove(rest, 1)
		if addr == nil then
			return false, err
		end
		skynet.error("socket: connect to backup host", addr.host, addr.port)
	end
	return false, "channel closed"	-- close() during auth
end

function connect_once(self)
	if self.closed then
		return false
	end
	local main = { host = self.host, port = self.port }
	local seen = { [tostring(main.host) .. ":" .. tostring(main.port)] = true }
	local rest = backup_list(self, seen)
	rest.seen = seen
	return try_addresses(self, main, rest)
end

-- Connects; unless `once`, keeps trying with a growing pause (0, 1, ... 10 s,
-- then 11 s and again from 1 s) until it connects or the channel is closed.
local function try_connect(self, once)
	local t = 0
	while not self.closed do
		local ok, err = connect_once(self)
		if ok then
			if not once then
				skynet.error("socket: connect to", self.host, self.port)
			end
			return
		elseif once then
			return err
		end
		skynet.error("socket: connect", err)
		if t > 1000 then
			skynet.error("socket: try to reconnect", self.host, self.port)
			skynet.sleep(t)
			t = 0
		else
			skynet.sleep(t)
		end
		t = t + 100
	end
end

-- "ready" if the link can be used by the running coroutine, "closed" if the
-- channel is closed, nil if a connect is needed (or under way).
local function state(self)
	local link = self.link
	if link then
		if socket.disconnected(link.fd) then
			skynet.error("socket: disconnect detected ", self.host, self.port)
			kill(self, link)
			if self.auth_co == running() then
				error(socket_error)	-- the link auth was using is gone
			end
		elseif not self.auth_co or self.auth_co == running() then
			return "ready"
		end
	end
	if self.closed then
		return "closed"
	end
end

-- Returns once the channel has a usable link; raises socket_error if it
-- could not connect, and an error if the channel is closed.
local function block_connect(self, once)
	local s = state(self)
	if s == nil then
		local err
		local waiters = self.connect_waiters
		if waiters then
			waiters[#waiters + 1] = running()
			skynet.wait(running())
		else
			waiters = {}
			self.connect_waiters = waiters
			local ok, e = pcall(try_connect, self, once)
			self.connect_waiters = false
			for i = 1, #waiters do
				skynet.wakeup(waiters[i])
			end
			if not ok then
				error(e)
			end
			err = e
		end
		s = state(self)
		if s == nil then
			skynet.error("Connect failed", err, self.host, self.port)
			error(socket_error)
		end
	end
	if s == "closed" then
		error(format("socketchannel: channel to %s:%s is closed", self.host, self.port))
	end
	return self.link
end

---------------------------------------------------------------- requests

local function wait_for_response(self, link, response)
	local co = running()
	if not link.alive then
		error(socket_error)
	end
	if self.session_reader then
		link.sessions[response] = co
	else
		local i = link.tail + 1
		link.tail = i
		link.funcs[i] = response
		link.cos[i] = co
		local idle = link.idle
		if idle then
			link.idle = false
			skynet.wakeup(idle)
		end
	end
	skynet.wait(co)
	local result, data = self.result[co], self.result_data[co]
	self.result[co], self.result_data[co] = nil, nil
	if result == socket_error then
		error(data or socket_error, 0)
	end
	if not result then
		error(data or "socketchannel: response failed", 0)
	end
	return data
end

function channel:connect(once)
	self.closed = false
	block_connect(self, once)
	return true
end

local write, lwrite = socket.write, socket.lwrite

-- Sends `request` (with the strings of table `padding` after it) and, unless
-- `response` is nil, waits for the answer.
function channel:request(request, response, padding)
	local link = block_connect(self, true)
	local fd = link.fd
	local sent
	if padding then
		sent = lwrite(fd, request)
		for _, part in ipairs(padding) do
			sent = sent and lwrite(fd, part)
		end
	else
		sent = write(fd, request)
	end
	if not sent then
		kill(self, link)
		error(socket_error)
	end
	if response == nil then
		return
	end
	return wait_for_response(self, link, response)
end

-- Waits for an answer nobody asked for (a push from the server).
function channel:response(response)
	local link = block_connect(self)
	return wait_for_response(self, link, response)
end

function channel:close()
	if not self.closed then
		self.closed = true
		local link = self.link
		if link then
			kill(self, link)
		end
	end
end

-- The next connect goes to host:port; the current link (if any) ends now.
function channel:changehost(host, port)
	self.host = host
	if port then
		self.port = port
	end
	if not self.closed and self.link then
		kill(self, self.link)
	end
end

function channel:changebackup(backup)
	self.backup = backup
end

channel_meta.__gc = channel.close

return socketchannel
