-- socket: UDP. udp_listen + udp_dial, sendto with the sender's address,
-- udp_address, udp + udp_connect, netstat and resolve.
local skynet = require "skynet"
local socket = require "skynet.socket"
require "skynet.manager"

local function log(...)
	skynet.error("sock_udp:", ...)
end

local function main()
	local server
	server = socket.udp_listen("127.0.0.1", 0, function(str, from)
		local ip = socket.udp_address(from)
		log("server got", str, ip)
		socket.sendto(server, from, "echo " .. str)
	end)
	local port
	for _, s in ipairs(socket.netstat()) do
		if s.id == server then
			log("netstat", s.type)
			port = tonumber(s.sock:match(":(%d+)$"))
		end
	end
	local me = coroutine.running()
	local client = socket.udp_dial("127.0.0.1", port, function(str, from)
		local ip, p = socket.udp_address(from)
		log("client got", str, ip, p == port)
		skynet.wakeup(me)
	end)
	socket.write(client, "ping")
	skynet.wait(me)
	local other = socket.udp(function(str)
		log("other got", str)
		skynet.wakeup(me)
	end)
	socket.udp_connect(other, "127.0.0.1", port)
	socket.write(other, "pong")
	skynet.wait(me)
	socket.close(client)
	socket.close(other)
	socket.close(server)
	local list = socket.resolve("127.0.0.1")
	log("resolve", list[1])
end

require "sock_run"(log, main)
