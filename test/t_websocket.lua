-- http.websocket server and client on 127.0.0.1 (port 0): text, binary,
-- large frames, ping/pong, close codes both ways; and raw sockets that check
-- the wire: the accept key, server frames unmasked, fragmented messages
-- with a ping between fragments, unmasked client frames refused with 1002,
-- oversized frames with 1009, bad handshakes; a raw server that fragments
-- its messages and finally sends a masked frame, which the client refuses.
local skynet = require "skynet"
local socket = require "skynet.socket"
local websocket = require "http.websocket"
local sockethelper = require "http.sockethelper"
local internal = require "http.internal"
local core = require "http.websocket.core"

local pack, unpack = string.pack, string.unpack

local function log(...)
	skynet.error("t_websocket:", ...)
end

local handle = {}

function handle.handshake(id, header, url)
	log("server handshake", url, header["x-test"], websocket.addrinfo(id) ~= nil)
end

function handle.message(id, msg, kind)
	if msg == "close me" then
		websocket.close(id, 4000, "bye")
		return
	end
	websocket.write(id, string.format("echo %s %d %s", kind, #msg, msg:sub(1, 12)), kind)
end

function handle.ping(id, data)
	log("server ping", data)
end

function handle.pong(id, data)
	log("server pong", data)
end

function handle.close(id, code, reason)
	log("server close", code, reason)
end

function handle.error(id, err)
	log("server error", tostring(err))
end

local function start_server()
	local id, _, port = socket.listen("127.0.0.1", 0)
	socket.start(id, function(fd, addr)
		skynet.fork(function()
			local ok, err = websocket.accept(fd, handle, "ws", addr)
			if not ok then
				log("server accept", ok, (tostring(err):gsub("\n.*", "")))
			end
		end)
	end)
	return port
end

-- A raw frame: b1 is FIN|RSV|opcode; masked with `key` when given.
local function frame(b1, payload, key)
	local len = #payload
	local b2 = key and 0x80 or 0
	local head
	if len < 126 then
		head = pack("BB", b1, b2 | len)
	elseif len <= 0xffff then
		head = pack(">BBI2", b1, b2 | 126, len)
	else
		head = pack(">BBI8", b1, b2 | 127, len)
	end
	if key then
		return head .. key .. core.mask(payload, key)
	end
	return head .. payload
end

-- The next raw frame: b1, masked, payload (unmasked).
local function read_raw(read)
	local b1, b2 = unpack("BB", read(2))
	local len = b2 & 0x7f
	if len == 126 then
		len = unpack(">I2", read(2))
	elseif len == 127 then
		len = unpack(">I8", read(8))
	end
	local key = b2 & 0x80 ~= 0 and read(4)
	local payload = len > 0 and read(len) or ""
	if key then
		payload = core.mask(payload, key)
	end
	return b1, key ~= false, payload
end

local KEY = "dGhlIHNhbXBsZSBub25jZQ=="

-- A raw client after its handshake: fd, read, status line, accept header.
local function raw_client(port, request)
	local fd = assert(socket.open("127.0.0.1", port))
	socket.write(fd, request or ("GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
		.. "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
		.. "Sec-WebSocket-Key: " .. KEY .. "\r\n\r\n"))
	local read = sockethelper.readfunc(fd)
	local lines = {}
	local rest = assert(internal.recvheader(read, lines, ""))
	internal.unread(read, rest)
	local header = internal.parseheader(lines, 2, {})
	return fd, read, lines[1], header
end

local function close_text(payload)
	if #payload < 2 then
		return "none"
	end
	return unpack(">I2", payload) .. " " .. payload:sub(3)
end

local function client_tests(port)
	local url = string.format("ws://127.0.0.1:%d/path?x=1", port)
	local ws = websocket.connect(url, { ["X-Test"] = "t" })
	websocket.write(ws, "hello")
	log("client text", websocket.read(ws))
	websocket.write(ws, "\0\1\2", "binary")
	local msg, kind = websocket.read(ws)
	log("client binary", kind, #msg)
	websocket.write(ws, string.rep("x", 100000))
	msg, kind = websocket.read(ws)
	log("client large", kind, msg)
	websocket.ping(ws)
	websocket.write(ws, "after ping", "text", 0x01020304)
	log("client after ping", websocket.read(ws))
	websocket.write(ws, "close me")
	log("client closed by server", websocket.read(ws))
	log("client is_close", websocket.is_close(ws), pcall(websocket.write, ws, "x"))

	local ws2 = websocket.connect(url)
	websocket.close(ws2, 1000, "done")
	skynet.sleep(20)

	local ok, err = pcall(websocket.connect, string.format("ws://127.0.0.1:%d/", port + 0), { Upgrade = "x" })
	log("client duplicate header", ok)
	ok, err = pcall(websocket.connect, "http://127.0.0.1/")
	log("client bad url", ok, tostring(err):match "invalid protocol" ~= nil)
end

local function raw_tests(port)
	-- the accept key of RFC 6455's example, and fragments around a ping
	local fd, read, status, header = raw_client(port)
	log("raw handshake", status, header["sec-websocket-accept"], header.upgrade)
	local key = "\x11\x22\x33\x44"
	socket.write(fd, frame(0x01, "Hel", key) .. frame(0x89, "pp", key)
		.. frame(0x00, "lo ", key) .. frame(0x80, "world", key))
	local b1, masked, payload = read_raw(read)
	log("raw pong", b1 & 0x0f, masked, payload)
	b1, masked, payload = read_raw(read)
	log("raw fragmented", b1 & 0x0f, masked, payload)
	socket.write(fd, frame(0x88, pack(">I2", 1001) .. "going", key))
	b1, masked, payload = read_raw(read)
	log("raw close echo", b1 & 0x0f, masked, close_text(payload), socket.read(fd) == false)
	socket.close(fd)
	skynet.sleep(10)

	-- an unmasked client frame
	fd, read = raw_client(port)
	socket.write(fd, frame(0x81, "plain"))
	b1, masked, payload = read_raw(read)
	log("raw unmasked", b1 & 0x0f, close_text(payload), socket.read(fd) == false)
	socket.close(fd)
	skynet.sleep(10)

	-- a frame over the limit
	fd, read = raw_client(port)
	socket.write(fd, pack(">BBI8", 0x82, 0xff, 300000))
	b1, masked, payload = read_raw(read)
	log("raw too large", b1 & 0x0f, close_text(payload))
	socket.close(fd)
	skynet.sleep(10)

	-- a continuation with nothing to continue, a fragmented ping
	fd, read = raw_client(port)
	socket.write(fd, frame(0x80, "x", key))
	b1, masked, payload = read_raw(read)
	log("raw stray continuation", close_text(payload))
	socket.close(fd)
	fd, read = raw_client(port)
	socket.write(fd, frame(0x09, "p", key))
	b1, masked, payload = read_raw(read)
	log("raw fragmented ping", close_text(payload))
	socket.close(fd)
	skynet.sleep(10)

	-- bad handshakes
	local _, _, st = raw_client(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	log("raw no upgrade", st)
	_, _, st = raw_client(port, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		.. "Sec-WebSocket-Version: 13\r\n\r\n")
	log("raw no key", st)
	_, _, st = raw_client(port, "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
	log("raw post", st)
	skynet.sleep(10)
end

-- A raw server: fragments a message (a ping between), then sends a masked frame.
local function raw_server_tests()
	local lid, _, port = socket.listen("127.0.0.1", 0)
	local seen = {}
	socket.start(lid, function(fd)
		skynet.fork(function()
			socket.start(fd)
			local read = sockethelper.readfunc(fd)
			local lines = {}
			local rest = internal.recvheader(read, lines, "")
			internal.unread(read, rest)
			local h = internal.parseheader(lines, 2, {})
			socket.write(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				.. "Sec-WebSocket-Accept: " .. core.accept(h["sec-websocket-key"]) .. "\r\n\r\n"
				.. frame(0x02, "ab") .. frame(0x89, "hi") .. frame(0x80, "cd"))
			local b1, masked, payload = read_raw(read)	-- the client's pong
			seen[#seen + 1] = string.format("%d %s %s", b1 & 0x0f, masked, payload)
			socket.write(fd, frame(0x81, "masked", "\1\2\3\4"))
			b1, masked, payload = read_raw(read)	-- the client's close
			seen[#seen + 1] = string.format("%d %s %s", b1 & 0x0f, masked, close_text(payload))
			socket.close(fd)
		end)
	end)
	local ws = websocket.connect("ws://127.0.0.1:" .. port)
	log("client fragmented", websocket.read(ws))
	log("client masked frame", websocket.read(ws))
	skynet.sleep(10)
	log("raw server saw", table.concat(seen, ", "))
	socket.close(lid)
end

local function main()
	local port = start_server()
	client_tests(port)
	raw_tests(port)
	raw_server_tests()
end

require "sock_run"(log, main)
