-- socket: failures. A connect to a closed port, to a host that does not
-- resolve, bad addresses, and a listen that cannot bind.
local skynet = require "skynet"
local socket = require "skynet.socket"
require "skynet.manager"

local function log(...)
	skynet.error("sock_refused:", ...)
end

local function main()
	-- a port that was just free: listen, learn it, close
	local lid, _, port = socket.listen("127.0.0.1", 0)
	socket.close(lid)
	local fd, err = socket.open("127.0.0.1", port)
	log("closed port", fd, err)
	fd, err = socket.open("no-such-host.invalid", 80)
	log("bad host", fd, type(err))
	local ok, e = pcall(socket.open, "127.0.0.1")
	log("no port", ok, e)
	ok, e = pcall(socket.open, "127.0.0.1", 0)
	log("port 0", ok, e)
	-- the same port twice: the second listen fails
	local l1, _, p1 = socket.listen("127.0.0.1:0")
	ok, e = pcall(socket.listen, "127.0.0.1", p1)
	log("listen twice", ok, e)
	socket.close(l1)
	log("invalid after close", socket.invalid(l1))
	log("write to unknown", socket.write(424242, "x"))
	-- the driver itself takes "host:port" too (skynet's cmaster/cslave call
	-- socket.listen with one string, and their socket.lua passes it on)
	local driver = require "skynet.socketdriver"
	local l2 = driver.listen("127.0.0.1:0")
	log("driver listen host:port", math.type(l2))
	driver.close(l2)
	ok, e = pcall(driver.listen, "127.0.0.1")
	log("driver listen no port", ok, e)
end

require "sock_run"(log, main)
