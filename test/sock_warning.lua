-- socket: flow control.
-- 1. A reader that does not read: past 128 KiB buffered its socket pauses
--    (the socket thread stops reading it) and resumes when it reads again.
-- 2. A paused reader makes 8 MiB of writes pile up on the writer: WARNING at
--    1 MiB, then at 2 MiB, ..., and a 0 K warning once everything is sent.
local skynet = require "skynet"
local socket = require "skynet.socket"
require "skynet.manager"

local function log(...)
	skynet.error("sock_warning:", ...)
end

-- The server: "SEND n" writes n bytes in 64 KiB pieces.
local function writer(fd)
	assert(socket.start(fd) == fd)
	local chunk = string.rep("w", 64 * 1024)
	while true do
		local line = socket.readline(fd)
		if not line then
			socket.close(fd)
			return
		end
		local n = tonumber(line:match("^SEND (%d+)$"))
		for _ = 1, n // #chunk do
			assert(socket.write(fd, chunk))
		end
		log("queued", fd, n)
	end
end

local function main()
	local lid, _, port = socket.listen("127.0.0.1", 0)
	socket.start(lid, function(fd)
		skynet.fork(writer, fd)
	end)

	local a = assert(socket.open("127.0.0.1", port))
	socket.write(a, "SEND 524288\n")
	skynet.sleep(50)	-- not reading: the buffer passes 128 KiB
	local data = assert(socket.read(a, 524288))
	log("a read", #data)
	socket.close(a)

	local TOTAL = 8 * 1024 * 1024
	local b = assert(socket.open("127.0.0.1", port))
	socket.pause(b)
	socket.write(b, "SEND " .. TOTAL .. "\n")
	skynet.sleep(100)	-- paused: the writer's queue grows
	data = assert(socket.read(b, TOTAL))
	log("b read", #data, data == string.rep("w", TOTAL))
	skynet.sleep(30)
	socket.close(b)
	socket.close(lid)
end

require "sock_run"(log, main)
