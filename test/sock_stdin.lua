-- socket: socket.stdin() reads the process's standard input line by line.
local skynet = require "skynet"
local socket = require "skynet.socket"
require "skynet.manager"

local function log(...)
	skynet.error("sock_stdin:", ...)
end

skynet.start(function()
	skynet.timeout(1000, function()
		log("TIMEOUT")
		skynet.abort()
	end)
	skynet.fork(function()
		local fd = socket.stdin()
		log("bound", fd ~= nil)
		while true do
			local line, rest = socket.readline(fd)
			if not line then
				log("eof, rest=" .. rest)
				break
			end
			log("line", line)
		end
		socket.close(fd)
		log("done")
		skynet.abort()
	end)
end)
