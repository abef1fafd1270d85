-- skynet.socketchannel against scripted servers in this service (loopback,
-- port 0): order and session modes, multi-part answers, auth, backup hosts,
-- reconnect with backoff, requests in flight when the server dies, overload,
-- changehost and close. Each case logs what it saw; the Rust test checks.
local skynet = require "skynet"
local socket = require "skynet.socket"
local sc = require "skynet.socketchannel"
require "skynet.manager"

local function log(...)
	skynet.error("t_sockchannel:", ...)
end

---------------------------------------------------------------- servers

-- Listens on 127.0.0.1 (port 0 unless given); handler(srv, fd) serves each
-- connection. srv:stop() closes the listener and every connection.
local function serve(handler, port, opts)
	local id, _, p = socket.listen("127.0.0.1", port or 0)
	local srv = { port = p, id = id, conns = {}, name = opts and opts.name or "srv" }
	for k, v in pairs(opts or {}) do
		srv[k] = v
	end
	socket.start(id, function(fd)
		srv.conns[fd] = true
		if srv.accept then
			srv.accept(fd)
		else
			skynet.fork(handler, srv, fd)
		end
	end)
	function srv.stop()
		socket.close(id)
		for fd in pairs(srv.conns) do
			srv.conns[fd] = nil
			socket.close(fd)
		end
	end
	return srv
end

-- Order-mode line protocol, one command at a time per connection.
local function order_server(srv, fd)
	socket.start(fd)
	local authed = not srv.password
	while true do
		local line = socket.readline(fd)
		if not line then
			break
		end
		local cmd, arg = line:match("^(%u+) ?(.*)$")
		if cmd == "AUTH" then
			skynet.sleep(10)
			authed = arg == srv.password
			socket.write(fd, authed and "OK\n" or "NO\n")
		elseif not authed then
			socket.write(fd, "ERR not authed\n")
		elseif cmd == "ECHO" then
			socket.write(fd, arg .. "\n")
		elseif cmd == "WHO" then
			socket.write(fd, srv.name .. "\n")
		elseif cmd == "SLOW" then
			local n, text = arg:match("^(%d+) (.*)$")
			skynet.sleep(tonumber(n))
			socket.write(fd, text .. "\n")
		elseif cmd == "MULTI" then
			local n = tonumber(arg)
			for i = 1, n do
				socket.write(fd, string.format("part%d %s\n", i, i < n and "more" or "end"))
			end
		elseif cmd == "ERR" then
			socket.write(fd, "ERR " .. arg .. "\n")
		elseif cmd == "TWICE" then
			socket.write(fd, arg .. " 1\n" .. arg .. " 2\n")
		elseif cmd == "DIE" then
			skynet.sleep(tonumber(arg) or 0)
			break
		end
	end
	srv.conns[fd] = nil
	socket.close(fd)
end

-- Session-mode protocol: "<session> <delay> <text>" is answered after delay
-- cs, so answers come back out of order.
local function session_server(srv, fd)
	socket.start(fd)
	while true do
		local line = socket.readline(fd)
		if not line then
			break
		end
		local s, delay, text = line:match("^(%d+) (%S+) ?(.*)$")
		if delay == "DIE" then
			break
		elseif delay == "MULTI" then
			socket.write(fd, s .. " + a\n" .. s .. " + b\n" .. s .. " . c\n")
		elseif delay == "ERR" then
			socket.write(fd, s .. " ! " .. text .. "\n")
		elseif delay == "PUSH" then
			-- an answer under another session, nobody asked for yet
			skynet.fork(function()
				skynet.sleep(5)
				socket.write(fd, (tonumber(s) + 1000) .. " . pushed " .. text .. "\n")
			end)
		elseif delay == "STRAY" then
			socket.write(fd, "999 . stray\n" .. s .. " . " .. text .. "\n")
		else
			skynet.fork(function()
				skynet.sleep(tonumber(delay))
				socket.write(fd, s .. " . " .. text .. "\n")
			end)
		end
	end
	srv.conns[fd] = nil
	socket.close(fd)
end

---------------------------------------------------------------- clients

local function readline(sock)
	local line = sock:readline("\n")
	if line:sub(1, 4) == "ERR " then
		return false, line:sub(5)
	end
	return true, line
end

local function read_part(sock)
	local name, more = sock:readline("\n"):match("^(%S+) (%a+)$")
	return true, name, more == "more"
end

local function read_session(sock)
	local line = sock:readline("\n")
	local s, mark, text = line:match("^(%d+) ([%+%.!]) (.*)$")
	return tonumber(s), mark ~= "!", text, mark == "+"
end

-- Runs fs concurrently; returns each one's (ok, result or error) and the
-- time (cs) it finished after the start.
local function together(...)
	local fs = { ... }
	local out, left = {}, #fs
	local t0 = skynet.now()
	local me = coroutine.running()
	for i, f in ipairs(fs) do
		skynet.fork(function()
			local ok, r = pcall(f)
			out[i] = { ok = ok, r = r, t = skynet.now() - t0 }
			left = left - 1
			if left == 0 then
				skynet.wakeup(me)
			end
		end)
	end
	skynet.wait(me)
	return out
end

local function show(r)
	if r.ok then
		return tostring(r.r)
	end
	return r.r == sc.error and "socket_error" or ("error " .. tostring(r.r))
end

local cases = {}

function cases.order()
	local srv = serve(order_server)
	local c = sc.channel { host = "127.0.0.1", port = srv.port, nodelay = true }
	local r = together(function()
		return c:request("SLOW 20 first\n", readline)
	end, function()
		return c:request("ECHO second\n", readline)
	end, function()
		return c:request("SLOW 5 third\n", readline)
	end)
	log("order", show(r[1]), show(r[2]), show(r[3]))
	log("order multi", table.concat(c:request("MULTI 3\n", read_part), ","))
	log("order refused", pcall(c.request, c, "ERR nope\n", readline))
	-- a request without a response (the server answers NOP with nothing)
	c:request("NOP ignored\n")
	log("order padding", c:request("ECHO", readline, { " with", " padding\n" }))
	log("order after no-response", c:request("ECHO next\n", readline))
	-- a response function that fails: its caller gets the error, the link ends
	local ok, err = pcall(c.request, c, "ECHO junk\n", function(sock)
		error("bad frame " .. sock:readline("\n"), 0)
	end)
	log("order bad frame", ok, err)
	log("order after bad frame", c:request("ECHO fresh\n", readline))
	-- response(): an answer read without a request of its own
	log("order twice", c:request("TWICE t\n", readline), c:response(readline))
	c:close()
	srv.stop()
end

function cases.session()
	local srv = serve(session_server)
	local c = sc.channel { host = "127.0.0.1", port = srv.port, response = read_session }
	local finished = {}
	local function req(s, delay, text)
		return function()
			local v = c:request(string.format("%d %d %s\n", s, delay, text), s)
			finished[#finished + 1] = v
			return v
		end
	end
	local r = together(req(1, 30, "one"), req(2, 0, "two"), req(3, 15, "three"))
	log("session", show(r[1]), show(r[2]), show(r[3]))
	log("session finish order", table.concat(finished, ","))
	log("session multi", table.concat(c:request("4 MULTI\n", 4), ","))
	log("session refused", pcall(c.request, c, "5 ERR no way\n", 5))
	log("session stray", c:request("6 STRAY ok\n", 6))
	c:request("7 PUSH p\n")
	log("session push", c:response(1007))
	c:close()
	srv.stop()
end

-- The server dies with requests in flight: each caller gets an error at
-- once, long before the answer it would have had.
function cases.inflight()
	local srv = serve(order_server)
	local c = sc.channel { host = "127.0.0.1", port = srv.port }
	log("inflight order warmup", c:request("ECHO up\n", readline))
	local r = together(function()
		return c:request("DIE 5\n", readline)
	end, function()
		return c:request("SLOW 300 late\n", readline)
	end)
	log("inflight order", show(r[1]), show(r[2]), r[1].t < 50 and r[2].t < 50)
	log("inflight order reconnect", c:request("ECHO again\n", readline))
	c:close()
	srv.stop()

	local ss = serve(session_server)
	local s = sc.channel { host = "127.0.0.1", port = ss.port, response = read_session }
	log("inflight session warmup", s:request("1 0 up\n", 1))
	r = together(function()
		return s:request("2 300 late\n", 2)
	end, function()
		skynet.sleep(5)
		return s:request("3 DIE\n", 3)
	end)
	log("inflight session", show(r[1]), show(r[2]), r[1].t < 50 and r[2].t < 50)
	log("inflight session reconnect", s:request("4 0 again\n", 4))
	-- close() with a request in flight
	r = together(function()
		return s:request("5 300 never\n", 5)
	end, function()
		skynet.sleep(5)
		s:close()
		return "closed"
	end)
	log("inflight close", show(r[1]), r[1].t < 50)
	local ok, err = pcall(s.request, s, "6 0 x\n", 6)
	log("after close", ok, tostring(err):match("is closed") ~= nil)
	ss.stop()
end

function cases.auth()
	local srv = serve(order_server, nil, { password = "letmein" })
	local function auth_with(pw)
		return function(ch)
			local r = ch:request("AUTH " .. pw .. "\n", readline)
			if r ~= "OK" then
				error("auth rejected: " .. r)
			end
		end
	end
	local bad = sc.channel { host = "127.0.0.1", port = srv.port, auth = auth_with("wrong") }
	local ok, err = pcall(bad.request, bad, "ECHO x\n", readline)
	log("auth bad", ok, err == sc.error)
	-- callers arriving during auth wait for it (the server refuses anything
	-- before AUTH)
	local good = sc.channel { host = "127.0.0.1", port = srv.port, auth = auth_with("letmein") }
	local r = together(function()
		return good:request("ECHO a\n", readline)
	end, function()
		return good:request("ECHO b\n", readline)
	end)
	log("auth good", show(r[1]), show(r[2]))
	good:close()
	srv.stop()
end

function cases.backup()
	local gone = serve(order_server)
	local dead = gone.port
	gone.stop()
	local srv = serve(order_server, nil, { name = "backup" })
	local c = sc.channel {
		host = "127.0.0.1",
		port = dead,
		backup = { "127.0.0.1", { host = "127.0.0.1", port = srv.port } },
	}
	log("backup", c:request("WHO\n", readline))
	-- changebackup: the main host (now the first backup) goes away
	local other = serve(order_server, nil, { name = "other" })
	c:changebackup { { host = "127.0.0.1", port = other.port } }
	srv.stop()
	skynet.sleep(5)	-- the channel sees the close
	log("changebackup", c:request("WHO\n", readline))
	other.stop()
	c:close()
	-- all hosts down: connect(true) raises, having tried each once
	srv.stop()
	local d = sc.channel { host = "127.0.0.1", port = dead, backup = { { host = "127.0.0.1", port = srv.port } } }
	local ok, err = pcall(d.connect, d, true)
	log("backup all down", ok, err == sc.error)
end

-- The server goes away and comes back on the same port.
function cases.restart()
	local srv = serve(order_server)
	local port = srv.port
	local c = sc.channel { host = "127.0.0.1", port = port }
	log("restart before", c:request("ECHO one\n", readline))
	srv.stop()
	skynet.sleep(5)
	local ok, err = pcall(c.request, c, "ECHO two\n", readline)
	log("restart while down", ok, err == sc.error)
	skynet.fork(function()
		skynet.sleep(50)
		srv = serve(order_server, port)
	end)
	local t0 = skynet.now()
	c:connect()	-- retries with backoff until the server is back
	log("restart reconnected", skynet.now() - t0 >= 50)
	log("restart after", c:request("ECHO three\n", readline))
	c:close()
	srv.stop()
end

-- close() ends a connect() that keeps retrying a host that is down.
function cases.close_connecting()
	local gone = serve(order_server)
	gone.stop()
	local c = sc.channel { host = "127.0.0.1", port = gone.port }
	local r = together(function()
		return c:connect()
	end, function()
		skynet.sleep(20)
		c:close()
	end)
	log("close while connecting", r[1].ok, tostring(r[1].r):match("is closed") ~= nil, r[1].t < 300)
end

function cases.changehost()
	local a = serve(order_server, nil, { name = "A" })
	local b = serve(order_server, nil, { name = "B" })
	local c = sc.channel { host = "127.0.0.1", port = a.port }
	log("changehost", c:request("WHO\n", readline))
	c:changehost("127.0.0.1", b.port)
	log("changehost", c:request("WHO\n", readline))
	c:close()
	a.stop()
	b.stop()
end

-- A server that does not read: the channel's send queue grows past the
-- warning mark (overload true), then drains once the server reads.
function cases.overload()
	local held
	local srv = serve(nil, nil, {
		accept = function(fd)
			held = fd
		end,
	})
	local notes = {}
	local c = sc.channel {
		host = "127.0.0.1",
		port = srv.port,
		overload = function(on)
			notes[#notes + 1] = tostring(on)
		end,
	}
	local chunk = string.rep("x", 1024 * 1024)
	local sent = 0
	for _ = 1, 64 do
		c:request(chunk)
		sent = sent + #chunk
		if notes[1] then
			break
		end
		skynet.sleep(1)
	end
	log("overload on", notes[1])
	for _ = 1, 100 do
		if held then
			break
		end
		skynet.sleep(1)
	end
	socket.start(held)
	local got = socket.read(held, sent)
	log("overload server read", got and #got == sent)
	for _ = 1, 200 do
		if notes[2] then
			break
		end
		skynet.sleep(1)
	end
	log("overload notes", table.concat(notes, ","))
	c:close()
	socket.close(held)
	srv.stop()
end

local order = {
	"order", "session", "inflight", "auth", "backup", "restart", "close_connecting", "changehost", "overload",
}

require "cases"(cases, order, log, 3000)
