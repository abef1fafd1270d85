-- http.httpd served to http.httpc and to raw sockets on 127.0.0.1 (port 0):
-- GET/POST, chunked both ways, streams, keep-alive with pipelining, the
-- timeout, bad requests answered 400/413/501/505 while another client is
-- still served, and http.url.
local skynet = require "skynet"
local socket = require "skynet.socket"
local httpd = require "http.httpd"
local httpc = require "http.httpc"
local sockethelper = require "http.sockethelper"
local internal = require "http.internal"
local urllib = require "http.url"

local function log(...)
	skynet.error("t_http:", ...)
end

local served = 0

local function route(method, url, header, body)
	local path, query = urllib.parse(url)
	if path == "/hello" then
		local q = urllib.parse_query(query)
		return 200, string.format("hello x=%s y=%s", q.x, q.y), { ["x-path"] = path }
	elseif path == "/echo" then
		return 200, string.format("%s %s ct=%s te=%s", method, body,
			tostring(header["content-type"]), tostring(header["transfer-encoding"]))
	elseif path == "/chunked" then
		local parts = { "one", "", "two", "three" }
		local i = 0
		return 200, function()
			i = i + 1
			return parts[i]
		end
	elseif path == "/big" then
		return 200, string.rep("b", 100000)
	elseif path == "/slow" then
		skynet.sleep(300)
		return 200, "late"
	elseif path == "/multi" then
		return 200, "m", { ["set-cookie"] = { "a=1", "b=2" } }
	end
	return 404, "no " .. path
end

-- One connection: requests until it closes, an error status, or "connection: close".
local function serve(id)
	socket.start(id)
	local read = sockethelper.readfunc(id)
	local write = sockethelper.writefunc(id)
	while true do
		local code, url, method, header, body = httpd.read_request(read, 8192)
		if not code then
			if url ~= sockethelper.socket_error then
				log("server error", url)
			end
			break
		end
		if code ~= 200 then
			log("server answered", code)
			httpd.write_response(write, code)
			break
		end
		served = served + 1
		local status, rbody, rheader = route(method, url, header, body)
		local ok, err = httpd.write_response(write, status, rbody, rheader)
		if not ok then
			log("server write failed", tostring(err))
			break
		end
		if header.connection == "close" then
			break
		end
	end
	socket.close(id)
end

local function start_server()
	local id, addr, port = socket.listen("127.0.0.1", 0)
	socket.start(id, function(fd)
		skynet.fork(serve, fd)
	end)
	return port
end

-- A raw connection's next response: status, header, body.
local function read_response(read)
	local lines = {}
	local rest = assert(internal.recvheader(read, lines, ""))
	local code = tonumber(lines[1]:match "^HTTP/1%.1 (%d+)")
	local header = assert(internal.parseheader(lines, 2, {}))
	local body = internal.response({ read = read }, code, rest, header)
	return code, header, body
end

local function raw(port, data)
	local fd = assert(socket.open("127.0.0.1", port))
	socket.write(fd, data)
	local read = sockethelper.readfunc(fd)
	local ok, code, header, body = pcall(read_response, read)
	socket.close(fd)
	if not ok then
		return "error " .. tostring(code)
	end
	return code, body
end

local function main()
	local port = start_server()
	local host = "127.0.0.1:" .. port

	-- GET with a query, response header fields
	local rh = {}
	local code, body = httpc.get(host, "/hello?x=1&y=a%20b", rh)
	log("get", code, body, rh["x-path"], rh["content-length"])
	code, body = httpc.get("http://" .. host, "/nothing")
	log("get 404", code, body)
	code, body = httpc.get("localhost:" .. port, "/hello?x=local")
	log("get by name", code, body)

	-- POST a form, and a body of our own
	code, body = httpc.post(host, "/echo", { a = "1 2" })
	log("post", code, body)
	code, body = httpc.request("PUT", host, "/echo", nil, { ["content-type"] = "text/plain" }, "raw body")
	log("put", code, body)

	-- chunked response, as a whole and as a stream
	code, body = httpc.get(host, "/chunked")
	log("chunked", code, body)
	local pieces = {}
	local stream = httpc.request_stream("GET", host, "/chunked")
	for piece in stream do
		pieces[#pieces + 1] = piece
	end
	log("stream chunked", stream.status, table.concat(pieces, ","), stream.connected)
	local total = 0
	stream = httpc.request_stream("GET", host, "/big")
	for piece in stream do
		total = total + #piece
	end
	log("stream big", stream.status, total, stream.connected)
	code, body = httpc.get(host, "/big")
	log("big", code, #body)
	rh = {}
	code = httpc.head(host, "/hello", rh)
	log("head", code)
	rh = {}
	httpc.get(host, "/multi", rh)
	log("multi", type(rh["set-cookie"]), table.concat(rh["set-cookie"], ";"))

	-- chunked request body (from a raw client)
	code, body = raw(port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		.. "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n")
	log("chunked request", code, body)

	-- keep-alive: two requests in one write, two responses on one connection
	do
		local fd = assert(socket.open("127.0.0.1", port))
		socket.write(fd, "GET /hello?x=k1 HTTP/1.1\r\nHost: x\r\n\r\n"
			.. "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
		local read = sockethelper.readfunc(fd)
		local c1, _, b1 = read_response(read)
		local c2, _, b2 = read_response(read)
		log("keep-alive", c1, b1, c2, b2, socket.read(fd) == false)
		socket.close(fd)
	end

	-- timeout
	httpc.timeout = 50
	local t0 = skynet.now()
	local ok, err = pcall(httpc.get, host, "/slow")
	log("timeout", ok, err == sockethelper.socket_error, tostring(err):match "timeout" ~= nil,
		skynet.now() - t0 < 200)
	httpc.timeout = nil
	ok, err = pcall(httpc.get, "127.0.0.1:1", "/")
	log("refused", ok, err == sockethelper.socket_error, tostring(err):match "connect failed" ~= nil)
	ok, err = pcall(httpc.get, "::1", "/")
	log("bare v6", ok, tostring(err):match "bare IPv6" ~= nil)

	-- bad requests, while a slow client keeps its connection half sent
	local slow = assert(socket.open("127.0.0.1", port))
	socket.write(slow, "GET /hello?x=slow HTTP/1.1\r\nHost: x\r\n")
	log("garbage", raw(port, "GARBAGE\r\n\r\n"))
	log("bad header line", raw(port, "GET / HTTP/1.1\r\nNoColonHere\r\n\r\n"))
	log("bad length", raw(port, "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n"))
	log("version", raw(port, "GET / HTTP/2.0\r\n\r\n"))
	log("coding", raw(port, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"))
	log("bad chunk", raw(port, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
	log("huge header", raw(port, "GET / HTTP/1.1\r\nX-Big: " .. string.rep("h", 9000)))
	log("huge body", raw(port, "POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"))
	log("huge chunk", raw(port, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3000\r\n"))
	socket.write(slow, "\r\n")
	local sread = sockethelper.readfunc(slow)
	local c, _, b = read_response(sread)
	log("slow client", c, b)
	socket.close(slow)
	code, body = httpc.get(host, "/hello?x=after")
	log("after bad", code, body)

	-- a body limit of nil takes any size
	do
		local id, _, p = socket.listen("127.0.0.1", 0)
		socket.start(id, function(fd)
			skynet.fork(function()
				socket.start(fd)
				local code, _, _, _, body = httpd.read_request(sockethelper.readfunc(fd))
				httpd.write_response(sockethelper.writefunc(fd), code, tostring(#body))
				socket.close(fd)
			end)
		end)
		code, body = httpc.request("POST", "127.0.0.1:" .. p, "/", nil, nil, string.rep("x", 50000))
		log("no limit", code, body)
		socket.close(id)
	end

	-- http.url
	local path, query = urllib.parse("/a%20b+c?k=1&k=2&e=&flag&sp=x%2By+z")
	local q = urllib.parse_query(query)
	log("url", path, query, type(q.k), q.k[1], q.k[2], q.e, q.flag, q.sp)
	log("url none", urllib.parse("/plain"))
	log("url bad escape", urllib.parse("/100%zz"))

	-- http.internal
	local h = internal.parseheader({ "A: 1", "B:2  ", "a: 3", "C: x", "\ty \t", "D: \t" .. string.rep(" ", 8000) }, 1, {})
	log("parseheader", h.a[1], h.a[2], h.b, h.c, "[" .. h.d .. "]")
	log("parseheader bad", internal.parseheader({ ": x" }, 1, {}), internal.parseheader({ " x" }, 1, {}))
	log("served", served)
end

require "sock_run"(log, main)
