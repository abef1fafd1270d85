-- The receiving side of sock_transfer: takes over a socket with socket.start.
local skynet = require "skynet"
local socket = require "skynet.socket"

local function log(...)
	skynet.error("sock_transfer_agent:", ...)
end

local function serve(fd)
	while true do
		local line = socket.readline(fd)
		if not line then
			log("saw close")
			socket.close(fd)
			return
		end
		socket.write(fd, "agent: " .. line .. "\n")
	end
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, fd)
		assert(cmd == "take")
		local id, err = socket.start(fd)
		log("started", id == fd, err)
		socket.write(fd, "agent ready\n")
		skynet.fork(serve, fd)
		skynet.ret(skynet.pack(id))
	end)
end)
