-- socket: listen on 127.0.0.1:0, connect, and exchange data with readline,
-- read(n), read() and readall; both sides closing.
local skynet = require "skynet"
local socket = require "skynet.socket"
require "skynet.manager"

local function log(...)
	skynet.error("sock_echo:", ...)
end

-- The server side of one connection: a tiny line protocol.
local function serve(fd, addr)
	log("accept", addr:match("^127%.0%.0%.1:%d+$") and "127.0.0.1:port" or addr)
	assert(socket.start(fd) == fd)
	while true do
		local line, rest = socket.readline(fd)
		if not line then
			log("server saw close, rest=" .. rest)
			socket.close(fd)
			return
		end
		local cmd, arg = line:match("^(%u+)%s*(.*)$")
		if cmd == "LINE" then
			socket.write(fd, arg .. "\n")
		elseif cmd == "READ" then
			local n = tonumber(arg)
			local data = socket.read(fd, n)
			socket.write(fd, string.format("GOT %d %s\n", #data, data:sub(1, 5)))
		elseif cmd == "SOME" then
			socket.write(fd, { "a", "b", "c" })	-- a table of strings
		elseif cmd == "ALL" then
			local all = socket.readall(fd)
			log("server readall", #all, all:sub(1, 3))
			socket.close(fd)
			return
		elseif cmd == "LIMIT" then
			-- more than 1000 bytes buffered closes the socket
			socket.limit(fd, 1000)
			skynet.sleep(30)
			log("server after limit, disconnected", socket.disconnected(fd))
			socket.close(fd)
			return
		elseif cmd == "BYE" then
			socket.write(fd, "bye")
			socket.close(fd)
			log("server closed")
			return
		end
	end
end

local function client(port)
	local fd = assert(socket.open("127.0.0.1", port))
	log("connected", fd)
	socket.write(fd, "LINE hello\n")
	log("readline", socket.readline(fd))
	-- read(n) on the server, with the bytes arriving in two pieces
	socket.write(fd, "READ 10\n01234")
	skynet.sleep(5)
	socket.lwrite(fd, "56789")
	log("readline", socket.readline(fd))
	socket.write(fd, "SOME\n")
	log("read some", socket.read(fd))
	-- the server closes after "bye": read(n) returns false and the rest
	socket.write(fd, "BYE\n")
	local ok, rest = socket.read(fd, 10)
	log("read after server close", ok, rest)
	assert(socket.disconnected(fd))
	socket.close(fd)
	assert(socket.invalid(fd))

	-- the client closes with unread data in flight on the server side
	local fd2 = assert(socket.open("127.0.0.1:" .. port))
	socket.write(fd2, "LINE x\npartial data")
	log("readline", socket.readline(fd2))
	socket.close(fd2)
	log("client closed", fd2)

	-- socket.limit on the server: too much unread data closes the connection
	local fd4 = assert(socket.open("127.0.0.1", port))
	socket.write(fd4, "LIMIT\n")
	skynet.sleep(5)
	socket.write(fd4, string.rep("q", 5000))
	log("read after limit", socket.read(fd4))
	socket.close(fd4)

	-- readall on the server: everything until the client closes
	local fd3 = assert(socket.open("127.0.0.1", port))
	socket.write(fd3, "ALL\n" .. string.rep("z", 300000))
	socket.close(fd3)
end

skynet.start(function()
	skynet.timeout(1500, function()
		log("TIMEOUT")
		skynet.abort()
	end)
	skynet.fork(function()
		local id, addr, port = socket.listen("127.0.0.1", 0)
		log("listen", addr, port > 0)
		socket.start(id, function(fd, a)
			skynet.fork(serve, fd, a)
		end)
		local ok, err = pcall(client, port)
		if not ok then
			log("FAIL", err)
		end
		skynet.sleep(50)
		socket.close(id)
		log("done")
		skynet.abort()
	end)
end)
