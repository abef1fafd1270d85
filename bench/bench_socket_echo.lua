-- Echo server for `skynet-bench socket`: listens on 127.0.0.1 (port from the
-- config's bench_socket_port, or any) and writes back whatever each connection
-- sends. `skynet.call(echo, "lua", "port")` answers the port it listens on.
-- Uses only skynet 1.8's API, so it runs on C skynet too.
local skynet = require "skynet"
local socket = require "skynet.socket"

local port

local function echo(id)
	socket.start(id)
	while true do
		local d = socket.read(id)
		if not d then
			break
		end
		socket.write(id, d)
	end
	socket.close(id)
end

skynet.start(function()
	local listen_id, _, p = socket.listen("127.0.0.1", tonumber(skynet.getenv "bench_socket_port") or 0)
	port = p
	socket.start(listen_id, function(id)
		skynet.fork(echo, id)
	end)
	skynet.dispatch("lua", function()
		skynet.ret(skynet.pack(port))
	end)
end)
