-- socket: a connection read by this service is handed to another one
-- (socket.abandon here, socket.start there).
local skynet = require "skynet"
local socket = require "skynet.socket"
require "skynet.manager"

local function log(...)
	skynet.error("sock_transfer:", ...)
end

local function main()
	local agent = skynet.newservice("sock_transfer_agent")
	local lid, _, port = socket.listen("127.0.0.1", 0)
	socket.start(lid, function(fd)
		skynet.fork(function()
			assert(socket.start(fd) == fd)
			log("main got", socket.readline(fd))
			socket.write(fd, "from main\n")
			socket.abandon(fd)
			log("main abandoned, invalid", socket.invalid(fd))
			log("agent took", skynet.call(agent, "lua", "take", fd) == fd)
		end)
	end)
	local c = assert(socket.open("127.0.0.1", port))
	socket.write(c, "hello main\n")
	log("client got", socket.readline(c))
	log("client got", socket.readline(c))	-- "agent ready"
	socket.write(c, "hello agent\n")
	log("client got", socket.readline(c))
	socket.close(c)
	skynet.sleep(30)
	socket.close(lid)
end

require "sock_run"(log, main)
