-- skynet.socket: blocking-style TCP and UDP sockets for Lua services.
--
-- Every socket the service knows is a record in `sockets` (id -> record).
-- Socket events arrive as PTYPE_SOCKET messages decoded by
-- socketdriver.unpack into (type, id, ud, data [, udp_address]); the event
-- handlers below fill the record's read buffer and wake the one coroutine
-- that waits on the socket (record.co).
--
-- Flow control: when more than BUFFER_LIMIT bytes are buffered and nobody is
-- reading, the socket is paused (the socket thread stops reading it) until a
-- reader comes back.

local driver = require "skynet.socketdriver"
local skynet = require "skynet"
local core = require "skynet.core"

local assert, error, type, pairs = assert, error, type, pairs
local format = string.format
local running = coroutine.running

local BUFFER_LIMIT = 128 * 1024

local socket = {}

-- Closing the service's Lua state closes every socket it still holds.
local sockets = setmetatable({}, {
	__gc = function(p)
		for id in pairs(p) do
			driver.close(id)
			p[id] = nil
		end
	end,
})
local close_callbacks = {}	-- id -> function(id), called on CLOSE
local on_event = {}	-- event type -> handler(id, ud, data, address)

local function wakeup(s)
	local co = s.co
	if co then
		s.co = nil
		skynet.wakeup(co)
	end
end

-- Stops reading a socket whose buffer is too full (once; a reader resumes it).
local function pause_socket(s, size)
	if s.pause ~= nil then
		return
	end
	if size then
		skynet.error(format("Pause socket (%d) size : %d", s.id, size))
	else
		skynet.error(format("Pause socket (%d)", s.id))
	end
	driver.pause(s.id)
	s.pause = true
	skynet.yield()	-- let the events already queued for this socket through
end

-- Waits for the next event that concerns the reader of `s`.
local function suspend(s)
	assert(not s.co)
	s.co = running()
	if s.pause then
		skynet.error(format("Resume socket (%d)", s.id))
		driver.start(s.id)
		skynet.wait(s.co)
		s.pause = nil
	else
		skynet.wait(s.co)
	end
	-- socket.close may be waiting for the reader to finish with the buffer
	if s.closing then
		skynet.wakeup(s.closing)
	end
end

-- 1 DATA: ud = byte count, data = a block the buffer takes over
on_event[1] = function(id, size, data)
	local s = sockets[id]
	if s == nil then
		skynet.error("socket: drop package from " .. id)
		driver.drop(data, size)
		return
	end
	local sz = driver.push(s.buffer, s.pool, data, size)
	local want = s.read_required
	local kind = type(want)
	if kind == "number" then
		-- read(id, n): wake once n bytes are there
		if sz >= want then
			s.read_required = nil
			if sz > BUFFER_LIMIT then
				pause_socket(s, sz)
			end
			wakeup(s)
		end
		return
	end
	if s.buffer_limit and sz > s.buffer_limit then
		skynet.error(format("socket buffer overflow: fd=%d size=%d", id, sz))
		driver.close(id)
		return
	end
	if kind == "string" then
		-- readline(id, sep): wake once a separator is there
		if driver.readline(s.buffer, nil, want) then
			s.read_required = nil
			if sz > BUFFER_LIMIT then
				pause_socket(s, sz)
			end
			wakeup(s)
		end
	elseif sz > BUFFER_LIMIT and not s.pause and want ~= true then
		-- nobody reads (readall, want == true, reads until the end: no pause)
		pause_socket(s, sz)
	end
end

-- 2 CONNECT: data = peer address, "start", "transfer", "binding", or the
-- listen address (then ud = the port)
on_event[2] = function(id, ud, addr)
	local s = sockets[id]
	if s == nil then
		return
	end
	if not s.connected then	-- a resume reports "transfer" again: ignore it
		if s.listen then
			s.addr = addr
			s.port = ud
		end
		s.connected = true
		wakeup(s)
	end
end

-- 3 CLOSE
on_event[3] = function(id)
	local s = sockets[id]
	if s then
		s.connected = false
		wakeup(s)
	else
		driver.close(id)
	end
	local cb = close_callbacks[id]
	if cb then
		close_callbacks[id] = nil
		cb(id)
	end
end

-- 4 ACCEPT: id = the listening socket, ud = the new socket, data = "ip:port"
on_event[4] = function(id, newid, addr)
	local s = sockets[id]
	if s == nil then
		driver.close(newid)
		return
	end
	s.callback(newid, addr)
end

-- 5 ERROR: data = the error text
on_event[5] = function(id, _, err)
	local s = sockets[id]
	if s == nil then
		driver.shutdown(id)
		skynet.error("socket: error on unknown", id, err)
		return
	end
	if s.callback then
		skynet.error("socket: accpet error:", err)
		return
	end
	if s.connected then
		skynet.error("socket: error on", id, err)
	elseif s.connecting then
		s.connecting = err
	end
	s.connected = false
	driver.shutdown(id)
	wakeup(s)
end

-- 6 UDP: ud = byte count, data = block, address = sender's address blob
on_event[6] = function(id, size, data, address)
	local s = sockets[id]
	if s == nil or s.callback == nil then
		skynet.error("socket: drop udp package from " .. id)
		driver.drop(data, size)
		return
	end
	local str = core.tostring(data, size)
	core.trash(data, size)
	s.callback(str, address)
end

local function default_warning(id, size)
	if sockets[id] then
		skynet.error(format("WARNING: %d K bytes need to send out (fd = %d)", size, id))
	end
end

-- 7 WARNING: ud = KB waiting to be sent (0: all sent)
on_event[7] = function(id, size)
	local s = sockets[id]
	if s then
		local warn = s.on_warning or default_warning
		warn(id, size)
	end
end

skynet.register_protocol {
	name = "socket",
	id = skynet.PTYPE_SOCKET,	-- 6
	unpack = driver.unpack,
	dispatch = function(_, _, t, ...)
		on_event[t](...)
	end,
}

-- Registers `id` (with a read buffer unless `func`, an accept callback, is
-- given) and waits for its CONNECT or ERROR.
local function connect(id, func)
	local buffer
	if func == nil then
		buffer = driver.buffer()
	end
	local s = {
		id = id,
		buffer = buffer,
		pool = buffer and {},
		connected = false,
		connecting = true,
		read_required = false,
		co = false,
		callback = func,
		protocol = "TCP",
	}
	assert(not close_callbacks[id], "socket has onclose callback")
	local old = sockets[id]
	if old and not old.listen then
		error("socket is not closed")
	end
	sockets[id] = s
	suspend(s)
	local err = s.connecting
	s.connecting = nil
	if s.connected then
		return id
	end
	sockets[id] = nil
	return nil, err
end

-- open(addr [, port]) -> id | nil, err
function socket.open(addr, port)
	local id = driver.connect(addr, port)
	return connect(id)
end

-- bind(os_fd) -> id: reads an OS file descriptor.
function socket.bind(os_fd)
	local id = driver.bind(os_fd)
	return connect(id)
end

function socket.stdin()
	return socket.bind(0)
end

-- start(id [, accept_callback]) -> id | nil, err: takes the socket over (an
-- accepted one, one handed over by socket.abandon, or a listening one whose
-- new connections go to accept_callback(newid, addr)).
function socket.start(id, func)
	driver.start(id)
	return connect(id, func)
end

function socket.pause(id)
	local s = sockets[id]
	if s then
		pause_socket(s)
	end
end

-- Closes at once, dropping unsent data; a CLOSE event follows (close later).
function socket.shutdown(id)
	if sockets[id] then
		driver.shutdown(id)
	end
end

-- Closes a socket this service never registered.
function socket.close_fd(id)
	assert(sockets[id] == nil, "Use socket.close instead")
	driver.close(id)
end

-- Closes (unsent data still goes out) and forgets the socket; a reader
-- blocked on it gets what is buffered first.
function socket.close(id)
	local s = sockets[id]
	if s == nil then
		return
	end
	driver.close(id)
	if s.connected then
		s.pause = false	-- never resume it
		if s.co then
			assert(not s.closing)
			s.closing = running()
			skynet.wait(s.closing)
		else
			suspend(s)
		end
		s.connected = false
	end
	sockets[id] = nil
end

-- read(id [, sz]) -> data | false, rest: sz bytes, or whatever is there (at
-- least one byte) when sz is nil. False plus the remaining bytes once closed.
function socket.read(id, sz)
	local s = sockets[id]
	assert(s)
	if sz == nil then
		local r = driver.readall(s.buffer, s.pool)
		if r ~= "" then
			return r
		end
		if not s.connected then
			return false, r
		end
		assert(not s.read_required)
		s.read_required = 0
		suspend(s)
		r = driver.readall(s.buffer, s.pool)
		if r ~= "" then
			return r
		end
		return false, r
	end
	local r = driver.pop(s.buffer, s.pool, sz)
	if r then
		return r
	end
	if not s.connected then
		return false, driver.readall(s.buffer, s.pool)
	end
	assert(not s.read_required)
	s.read_required = sz
	suspend(s)
	r = driver.pop(s.buffer, s.pool, sz)
	if r then
		return r
	end
	return false, driver.readall(s.buffer, s.pool)
end

-- readall(id) -> everything until the socket closes
function socket.readall(id)
	local s = sockets[id]
	assert(s)
	if not s.connected then
		local r = driver.readall(s.buffer, s.pool)
		return r ~= "" and r
	end
	assert(not s.read_required)
	s.read_required = true
	suspend(s)
	assert(s.connected == false)
	return driver.readall(s.buffer, s.pool)
end

-- readline(id [, sep]) -> line (without sep) | false, rest
function socket.readline(id, sep)
	sep = sep or "\n"
	local s = sockets[id]
	assert(s)
	local r = driver.readline(s.buffer, s.pool, sep)
	if r then
		return r
	end
	if not s.connected then
		return false, driver.readall(s.buffer, s.pool)
	end
	assert(not s.read_required)
	s.read_required = sep
	suspend(s)
	if s.connected then
		return driver.readline(s.buffer, s.pool, sep)
	end
	return false, driver.readall(s.buffer, s.pool)
end

-- block(id) -> connected: waits for data or the end
function socket.block(id)
	local s = sockets[id]
	if not s or not s.connected then
		return false
	end
	assert(not s.read_required)
	s.read_required = 0
	suspend(s)
	return s.connected
end

socket.write = assert(driver.send)
socket.lwrite = assert(driver.lsend)
socket.header = assert(driver.header)

function socket.invalid(id)
	return sockets[id] == nil
end

function socket.disconnected(id)
	local s = sockets[id]
	if s then
		return not (s.connected or s.connecting)
	end
end

-- listen(host [, port [, backlog]]) -> id, addr, port. `host` may be
-- "host:port" (or "[v6]:port"). Call socket.start(id, accept) to accept.
function socket.listen(host, port, backlog)
	if port == nil then
		host, port = string.match(host, "^(.+):([^:]+)$")
		port = tonumber(port)
		if host then
			host = string.match(host, "^%[(.*)%]$") or host
		end
	end
	local id = driver.listen(host, port, backlog)
	local s = {
		id = id,
		connected = false,
		listen = true,
	}
	assert(sockets[id] == nil)
	sockets[id] = s
	suspend(s)
	return id, s.addr, s.port
end

-- Forgets the socket (and its buffered data) without closing it, so that
-- another service can socket.start it.
function socket.abandon(id)
	local s = sockets[id]
	if s then
		s.connected = false
		wakeup(s)
		close_callbacks[id] = nil
		sockets[id] = nil
	end
end

-- Closes the socket when more than `limit` bytes wait in its buffer.
function socket.limit(id, limit)
	local s = assert(sockets[id])
	s.buffer_limit = limit
end

---------------------------------------------------------------- UDP

-- Records a UDP socket of this service; `cb` gets its datagrams.
local function register_udp(id, cb)
	assert(not sockets[id], "socket is not closed")
	sockets[id] = {
		id = id,
		connected = true,
		protocol = "UDP",
		callback = cb,
	}
end

-- udp(callback [, host, port]) -> id; callback(data, address_blob)
function socket.udp(callback, host, port)
	local id = driver.udp(host, port)
	register_udp(id, callback)
	return id
end

-- Sets the default destination of a UDP socket (registering it if needed).
function socket.udp_connect(id, addr, port, callback)
	local s = sockets[id]
	if s then
		assert(s.protocol == "UDP")
		if callback then
			s.callback = callback
		end
	else
		register_udp(id, callback)
	end
	driver.udp_connect(id, addr, port)
end

-- A UDP socket bound to addr:port.
function socket.udp_listen(addr, port, callback)
	local id = driver.udp_listen(addr, port)
	register_udp(id, callback)
	return id
end

-- A UDP socket connected to addr:port.
function socket.udp_dial(addr, port, callback)
	local id = driver.udp_dial(addr, port)
	register_udp(id, callback)
	return id
end

socket.sendto = assert(driver.udp_send)
socket.udp_address = assert(driver.udp_address)
socket.netstat = assert(driver.info)
socket.resolve = assert(driver.resolve)

-- callback(id, size_kb) replaces the default WARNING log for this socket.
function socket.warning(id, callback)
	local s = sockets[id]
	assert(s)
	s.on_warning = callback
end

-- callback(id) runs when the socket reports CLOSE.
function socket.onclose(id, callback)
	close_callbacks[id] = callback
end

return socket
