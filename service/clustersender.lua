-- clustersender: the connection from this node to one cluster node, launched
-- by clusterd as `clustersender <node> <nodename> <host:port | false>`.
--
-- lua commands (skynet's): req(addr, msg, sz) -> the reply, push(addr, msg,
-- sz), changenode(host [, port] | false). Ours besides: req takes a fourth
-- argument, a token; when that call fails, error(token) answers the reason
-- (skynet.call can only raise "call failed"), for cluster_timeout seconds
-- after the failure. status() -> { connected,
-- pending, last_error, address }.
--
-- Unlike skynet's (a socketchannel), it talks to the socket itself so that:
--   * every call ends within cluster_timeout (config, seconds, default 10),
--     whether the node is down, unreachable, or connected and silent;
--   * a connection quiet for cluster_heartbeat seconds gets a heartbeat, a
--     name query (addr 0) that any clusteragent answers, C skynet's too; no
--     answer within cluster_timeout closes the connection;
--   * packets go out in the order of the commands, whatever their size (one
--     write priority for everything; while connecting they wait in a queue);
--   * a closed connection fails its calls at once; the next command connects
--     again, so a node restarted at the same address is reached again;
--   * changenode fails the calls in flight with an error saying so.

local skynet = require "skynet"
local socket = require "skynet.socket"
local driver = require "skynet.socketdriver"
local cluster = require "skynet.cluster.core"

local node, nodename, init_host, init_port = ...

local format = string.format
local running = coroutine.running

local function seconds(key, default)
	local v = skynet.getenv(key)
	local n = v and tonumber(v)
	if v and not (n and n > 0) then
		skynet.error(format("clustersender: bad %s = %s, using %g", key, v, default))
		n = nil
	end
	return n or default
end

local TIMEOUT = seconds("cluster_timeout", 10)
local HEARTBEAT = seconds("cluster_heartbeat", math.min(TIMEOUT / 2, 5))
local timeout_cs = math.max(1, math.floor(TIMEOUT * 100))
local heartbeat_cs = math.max(1, math.floor(HEARTBEAT * 100))
-- The sweep that enforces both: a call ends at most one tick past its bound.
local tick_cs = math.max(5, math.min(100, math.min(timeout_cs, heartbeat_cs) // 4))
-- A name nobody needs to have registered: the answer, found or not, is proof
-- of life.
local HEARTBEAT_NAME = "__cluster_heartbeat"

local host, port	-- host == false: the node is down (config says false)
local session = 1
local link = false	-- the live connection: { fd, alive, sessions, last_recv, hb }
local connecting = false	-- { queue = {...}, started, abandoned }
local calls = {}	-- co -> { session, deadline, link, done, ok, data, parts }
local pending = 0
local last_error = nil
-- source -> { token -> { reason, at } }, for error(token); kept for
-- cluster_timeout, so that a caller that died before asking leaves nothing
local errors = {}

local function where()
	if host == false then
		return format("cluster node [%s]", node)
	end
	return format("cluster node [%s] (%s:%s)", node, host, port)
end

local function set_target(h, p)
	if h == false or h == nil or h == "false" then
		host, port = false, nil
		return
	end
	if p == nil or p == "" then
		local hh, pp = tostring(h):match "^(.+):(%d+)$"
		assert(hh, format("clustersender: bad address %s for node %s", tostring(h), node))
		h, p = hh, pp
	end
	host, port = h, assert(tonumber(p), "clustersender: bad port")
end

---------------------------------------------------------------- calls

local function finish(co, ok, data)
	local c = calls[co]
	if c and not c.done then
		c.done = true
		c.ok = ok
		c.data = data
		skynet.wakeup(co)
	end
end

-- Ends `l`: its calls fail with `err` now, the socket closes.
local function kill(l, err)
	if not l.alive then
		return
	end
	l.alive = false
	if link == l then
		link = false
	end
	last_error = err
	for s, co in pairs(l.sessions) do
		l.sessions[s] = nil
		if type(co) == "thread" then
			finish(co, false, err)
		end
	end
	-- drop what is unsent (the peer may be stopped), and let the reader
	-- leave its read before the socket is forgotten
	driver.shutdown(l.fd)
	skynet.fork(pcall, socket.close, l.fd)
end

local function write_all(fd, list)
	for i = 1, #list do
		if not socket.write(fd, list[i]) then
			return false
		end
	end
	return true
end

-- Writes one entry ({ packets, session, co }) on the live link.
local function put(l, e)
	if e.co then
		local c = calls[e.co]
		if c == nil or c.done then
			return	-- timed out while waiting for the connect: not sent
		end
		l.sessions[e.session] = e.co
		c.link = l
	end
	if not write_all(l.fd, e.packets) then
		kill(l, where() .. ": write failed")
	end
end

local function fail_queue(q, err)
	local dropped = 0
	for _, e in ipairs(q) do
		if e.co then
			finish(e.co, false, err)
		else
			dropped = dropped + 1
		end
	end
	if dropped > 0 then
		skynet.error(format("%s: %d send(s) dropped: %s", where(), dropped, err))
	end
end

local dispatch

local function connect(attempt)
	local h, p = host, port
	local fd, err = socket.open(h, p)
	if attempt.abandoned then	-- timed out or changenode meanwhile
		if fd then
			socket.close(fd)
		end
		return
	end
	connecting = false
	if not fd then
		last_error = format("%s: connect failed: %s", where(), tostring(err))
		fail_queue(attempt.queue, last_error)
		return
	end
	driver.nodelay(fd)
	local l = { fd = fd, alive = true, sessions = {}, last_recv = skynet.now(), hb = false }
	link = l
	last_error = nil
	skynet.fork(dispatch, l)
	for _, e in ipairs(attempt.queue) do
		if not l.alive then
			fail_queue({ e }, last_error)
		else
			put(l, e)
		end
	end
end

-- Sends an entry now, or queues it behind a connect (starting one).
local function send(e)
	if link and link.alive then
		return put(link, e)
	end
	if not connecting then
		connecting = { queue = {}, started = skynet.now() }
		skynet.fork(connect, connecting)
	end
	local q = connecting.queue
	q[#q + 1] = e
end

-- Reads replies until the connection ends.
function dispatch(l)
	local fd = l.fd
	local reason = "connection closed"
	while l.alive do
		local head = socket.read(fd, 2)
		local body = head and socket.read(fd, socket.header(head))
		if not body then
			break
		end
		l.last_recv = skynet.now()
		local ok, s, rok, data, more = pcall(cluster.unpackresponse, body)
		if not ok then
			reason = "bad reply: " .. tostring(s)
			break
		end
		local co = l.sessions[s]
		if co == "heartbeat" then
			if not more then
				l.sessions[s] = nil
				l.hb = false
			end
		elseif co then
			local c = calls[co]
			if more then
				if rok then
					local parts = c.parts
					if parts == nil then
						parts = {}
						c.parts = parts
					end
					parts[#parts + 1] = data
				end
			else
				l.sessions[s] = nil
				local parts = c.parts
				if rok and parts then
					parts[#parts + 1] = data
					local msg, sz = cluster.concat(parts)
					if msg then
						finish(co, true, { msg, sz })
					else
						finish(co, false, where() .. ": malformed multi-part reply")
					end
				elseif rok then
					finish(co, true, data)
				else
					finish(co, false, format("%s: remote error: %s", where(), tostring(data)))
				end
			end
		end
		-- else: the reply of a call that timed out, dropped
	end
	kill(l, format("%s: %s", where(), reason))
end

local function request(addr, msg, sz)
	if host == false then
		if sz then
			skynet.trash(msg, sz)
		end
		return false, where() .. " is down (false in the cluster config)"
	end
	local current = session
	local req, new_session, padding = cluster.packrequest(addr, session, msg, sz)
	session = new_session
	local packets = { req }
	if padding then
		for _, p in ipairs(padding) do
			packets[#packets + 1] = p
		end
	end
	local tag = skynet.tracetag()
	if tag then
		if tag:sub(1, 1) ~= "(" then
			local newtag = format("(%s-%s-%d)%s", nodename, node, current, tag)
			skynet.tracelog(tag, format("session %s", newtag))
			tag = newtag
		end
		skynet.tracelog(tag, format("cluster %s", node))
		table.insert(packets, 1, cluster.packtrace(tag))
	end
	local co = running()
	local c = { session = current, deadline = skynet.now() + timeout_cs }
	calls[co] = c
	pending = pending + 1
	send { packets = packets, session = current, co = co }
	if not c.done then
		skynet.wait(co)
	end
	calls[co] = nil
	pending = pending - 1
	return c.ok, c.data
end

---------------------------------------------------------------- the sweep

local function sweep()
	local now = skynet.now()
	for co, c in pairs(calls) do
		if not c.done and now >= c.deadline then
			local l = c.link
			if l then
				l.sessions[c.session] = nil
			end
			finish(co, false, format("%s: no answer within %gs (cluster_timeout)", where(), TIMEOUT))
		end
	end
	if connecting and now - connecting.started >= timeout_cs then
		local attempt = connecting
		attempt.abandoned = true
		connecting = false
		last_error = format("%s: connect timed out after %gs", where(), TIMEOUT)
		fail_queue(attempt.queue, last_error)
	end
	for source, t in pairs(errors) do
		for token, e in pairs(t) do
			if now - e.at >= timeout_cs then
				t[token] = nil
			end
		end
		if next(t) == nil then
			errors[source] = nil
		end
	end
	local l = link
	if l and l.alive then
		if l.hb then
			if now - l.hb >= timeout_cs then
				skynet.error(format("%s: no answer to a heartbeat within %gs, closing", where(), TIMEOUT))
				kill(l, format("%s: not responding (heartbeat unanswered for %gs)", where(), TIMEOUT))
			end
		elseif now - l.last_recv >= heartbeat_cs then
			local s = session
			local req, new_session = cluster.packrequest(0, s, skynet.packstring(HEARTBEAT_NAME))
			session = new_session
			l.sessions[s] = "heartbeat"
			l.hb = now
			if not socket.write(l.fd, req) then
				kill(l, where() .. ": write failed")
			end
		end
	end
end

local function sweeper()
	while true do
		skynet.sleep(tick_cs)
		sweep()
	end
end

---------------------------------------------------------------- commands

local command = {}

function command.req(source, addr, msg, sz, token)
	local ok, data = request(addr, msg, sz)
	if ok then
		if type(data) == "table" then
			skynet.ret(data[1], data[2])
		else
			skynet.ret(data)
		end
		return
	end
	if token then
		local t = errors[source]
		if t == nil then
			t = {}
			errors[source] = t
		end
		t[token] = { reason = data, at = skynet.now() }
	else
		skynet.error(data)
	end
	skynet.response()(false)
end

function command.error(source, token)
	local t = errors[source]
	local e = t and t[token]
	local reason = e and e.reason
	if t then
		t[token] = nil
		if next(t) == nil then
			errors[source] = nil
		end
	end
	skynet.ret(skynet.pack(reason))
end

function command.push(_, addr, msg, sz)
	if host == false then
		if sz then
			skynet.trash(msg, sz)
		end
		return
	end
	local req, new_session, padding = cluster.packpush(addr, session, msg, sz)
	local packets = { req }
	if padding then
		session = new_session
		for _, p in ipairs(padding) do
			packets[#packets + 1] = p
		end
	end
	send { packets = packets }
end

function command.changenode(_, h, p)
	local old_host, old_port = host, port
	set_target(h, p)
	if host ~= old_host or port ~= old_port then
		local err
		if host == false then
			err = format("cluster node [%s] is down (set to false by a reload)", node)
			skynet.error("Close cluster sender", old_host, old_port)
		else
			err = format("cluster node [%s] moved from %s:%s to %s:%s (reload)",
				node, tostring(old_host), tostring(old_port), host, port)
		end
		if connecting then
			local attempt = connecting
			attempt.abandoned = true
			connecting = false
			fail_queue(attempt.queue, err)
		end
		if link then
			kill(link, err)
		end
		last_error = nil
	end
	skynet.ret(skynet.pack(nil))
end

function command.status()
	skynet.retpack {
		connected = link and link.alive or false,
		pending = pending,
		last_error = last_error,
		address = host and format("%s:%s", host, port) or false,
	}
end

skynet.start(function()
	set_target(init_host, init_port)
	skynet.dispatch("lua", function(_, source, cmd, ...)
		local f = assert(command[cmd], cmd)
		f(source, ...)
	end)
	skynet.fork(sweeper)
end)
