-- http benchmark: httpd.read_request parsing a typical request from memory,
-- httpc GET round trips to an httpd in another service (a connection each),
-- and websocket echo round trips (small text, 64 KiB binary) between two
-- services, all on 127.0.0.1.
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local httpd = require "http.httpd"
local httpc = require "http.httpc"
local sockethelper = require "http.sockethelper"
local websocket = require "http.websocket"

local mode = ...

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.0f %s", name, value, unit))
end

local function now()
	return skynet.hpc() / 1e9
end

if mode == "server" then
	local handle = {}
	function handle.message(id, msg, kind)
		websocket.write(id, msg, kind)
	end
	skynet.start(function()
		local hid, _, hport = socket.listen("127.0.0.1", 0)
		socket.start(hid, function(fd)
			skynet.fork(function()
				socket.start(fd)
				local read, write = sockethelper.readfunc(fd), sockethelper.writefunc(fd)
				while true do
					local code = httpd.read_request(read, 8192)
					if not code then
						break
					end
					httpd.write_response(write, code, "hello")
				end
				socket.close(fd)
			end)
		end)
		local wid, _, wport = socket.listen("127.0.0.1", 0)
		socket.start(wid, function(fd, addr)
			skynet.fork(websocket.accept, fd, handle, "ws", addr)
		end)
		skynet.dispatch("lua", function()
			skynet.ret(skynet.pack(hport, wport))
		end)
	end)
	return
end

local REQUEST = "POST /api/v1/items?id=42&page=3 HTTP/1.1\r\n"
	.. "Host: game.example.com:8080\r\n"
	.. "User-Agent: bench/1.0\r\n"
	.. "Accept: application/json\r\n"
	.. "Accept-Encoding: gzip, deflate\r\n"
	.. "Content-Type: application/json\r\n"
	.. "Cookie: session=0123456789abcdef; theme=dark\r\n"
	.. "X-Request-Id: 7f9c2ba4-e88f-11e8-9f32-f2801f1b9fd1\r\n"
	.. "Content-Length: 27\r\n"
	.. "\r\n"
	.. '{"name":"sword","level":12}'

skynet.start(function()
	-- parsing alone: a reader that gives the request in one piece
	local n = 50000
	local t0 = now()
	for _ = 1, n do
		local given = false
		local code = httpd.read_request(function(sz)
			if given then
				error "read past the request"
			end
			given = true
			return REQUEST
		end, 8192)
		assert(code == 200)
	end
	report("http_parse_request", n / (now() - t0), "ops/s")

	local server = skynet.newservice(SERVICE_NAME, "server")
	local hport, wport = skynet.call(server, "lua", "ports")
	local host = "127.0.0.1:" .. hport

	n = 2000
	t0 = now()
	for _ = 1, n do
		local code = httpc.get(host, "/")
		assert(code == 200)
	end
	report("http_get_roundtrip", n / (now() - t0), "req/s")

	local ws = websocket.connect("ws://127.0.0.1:" .. wport .. "/")
	n = 20000
	local msg = string.rep("m", 32)
	t0 = now()
	for _ = 1, n do
		websocket.write(ws, msg)
		assert(websocket.read(ws) == msg)
	end
	report("websocket_echo_32B", n / (now() - t0), "msg/s")

	n = 500
	msg = string.rep("b", 65536)
	t0 = now()
	for _ = 1, n do
		websocket.write(ws, msg, "binary")
		assert(#websocket.read(ws) == #msg)
	end
	report("websocket_echo_64KiB", n * #msg * 2 / (now() - t0) / 1e6, "MB/s")
	websocket.close(ws)
	skynet.abort()
end)
