-- socketchannel benchmark: request/response round trips through
-- skynet.socketchannel to an echo server in another service of the same node
-- over 127.0.0.1, in order mode and session mode, with one caller and with 16
-- concurrent callers. Frames are a 2-byte big-endian length and a body; in
-- session mode the body starts with a 4-byte session.
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local sc = require "skynet.socketchannel"

local mode = ...

local util = require "bench_util"
local report = util.report

if mode == "server" then
	local function echo(fd)
		socket.start(fd)
		while true do
			local head = socket.read(fd, 2)
			if not head then
				break
			end
			local body = socket.read(fd, string.unpack(">I2", head))
			if not body then
				break
			end
			socket.write(fd, head .. body)
		end
		socket.close(fd)
	end
	skynet.start(function()
		local id, _, port = socket.listen("127.0.0.1", 0)
		socket.start(id, function(fd)
			skynet.fork(echo, fd)
		end)
		skynet.dispatch("lua", function()
			skynet.ret(skynet.pack(port))
		end)
	end)
	return
end

local PAYLOAD = string.rep("x", 32)

local function read_frame(sock)
	local n = string.unpack(">I2", sock:read(2))
	return true, sock:read(n)
end

local function read_session(sock)
	local n = string.unpack(">I2", sock:read(2))
	local body = sock:read(n)
	return string.unpack(">I4", body), true, body
end

-- `callers` coroutines that make `n` requests in all: round trips/s.
local function run(callers, n, one)
	return util.run(callers, n // callers, one)
end

skynet.start(function()
	local server = skynet.newservice(SERVICE_NAME, "server")
	local port = skynet.call(server, "lua")
	local frame = string.pack(">s2", PAYLOAD)

	local order = sc.channel { host = "127.0.0.1", port = port, nodelay = true }
	order:connect(true)
	local function order_one()
		local r = order:request(frame, read_frame)
		assert(#r == #PAYLOAD)
	end
	run(1, 2000, order_one)	-- warm up
	report("socketchannel_order_sequential", run(1, 50000, order_one), "round-trips/s")
	report("socketchannel_order_concurrent_16", run(16, 100000, order_one), "round-trips/s")
	order:close()

	local session = sc.channel {
		host = "127.0.0.1",
		port = port,
		nodelay = true,
		response = read_session,
	}
	session:connect(true)
	local next_session = 0
	local function session_one()
		next_session = next_session + 1
		local s = next_session
		local r = session:request(string.pack(">s2", string.pack(">I4", s) .. PAYLOAD), s)
		assert(#r == #PAYLOAD + 4)
	end
	run(1, 2000, session_one)
	report("socketchannel_session_sequential", run(1, 50000, session_one), "round-trips/s")
	report("socketchannel_session_concurrent_16", run(16, 100000, session_one), "round-trips/s")
	session:close()
	skynet.abort()
end)
