-- Socket benchmark driver for `skynet-bench socket` (or by hand with a config
-- whose start is "bench_socket"): an echo server service (bench_socket_echo)
-- and clients in this service, both ends through skynet.socket over loopback.
-- Prints "BENCH name value unit" lines, then "BENCH socket_echo_port <port>"
-- and stays up so that an outside client can measure the same server.
-- Uses only skynet 1.8's API, so it runs on C skynet too.
local skynet = require "skynet"
local socket = require "skynet.socket"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

local function rounds(name, k, unit, run)
	local got = {}
	for i = 1, k do
		got[i] = run()
	end
	table.sort(got)
	report(name, got[(k + 1) // 2], unit)
	report(name .. "_best", got[k], unit)
end

local MSG = string.rep("x", 64)

local function connect(port)
	local id = assert(socket.open("127.0.0.1", port))
	return id
end

-- n round trips on one connection, one message in flight.
local function echo_loop(id, n)
	for i = 1, n do
		socket.write(id, MSG)
		local r = socket.read(id, 64)
		assert(r and #r == 64, "echo lost")
	end
end

local function bench_sequential(port, n)
	local id = connect(port)
	echo_loop(id, 1000) -- warm up
	rounds("socket_echo_sequential", 3, "rt/s", function()
		local t0 = skynet.hpc()
		echo_loop(id, n)
		return n / ((skynet.hpc() - t0) / 1e9)
	end)
	socket.close(id)
end

local function bench_concurrent(port, conns, per)
	local ids = {}
	for c = 1, conns do
		ids[c] = connect(port)
		echo_loop(ids[c], 100)
	end
	rounds("socket_echo_concurrent_" .. conns, 3, "rt/s", function()
		local token = {}
		local left = conns
		local t0 = skynet.hpc()
		for c = 1, conns do
			skynet.fork(function()
				echo_loop(ids[c], per)
				left = left - 1
				if left == 0 then
					skynet.wakeup(token)
				end
			end)
		end
		skynet.wait(token)
		return conns * per / ((skynet.hpc() - t0) / 1e9)
	end)
	for c = 1, conns do
		socket.close(ids[c])
	end
end

-- `total` bytes written in `chunk`-byte writes, at most `window` bytes in
-- flight, and read back (echoed) by a second coroutine: MiB/s of payload each
-- way.
local function bench_bulk(port, total, chunk, window)
	local block = string.rep("b", chunk)
	rounds("socket_bulk_echo", 3, "MiB/s", function()
		local id = connect(port)
		local done, room = {}, {}
		local sent, got = 0, 0
		local blocked = false
		local t0 = skynet.hpc()
		skynet.fork(function()
			while got < total do
				local d = assert(socket.read(id), "bulk lost")
				got = got + #d
				if blocked and sent - got < window then
					blocked = false
					skynet.wakeup(room)
				end
			end
			skynet.wakeup(done)
		end)
		while sent < total do
			if sent - got >= window then
				blocked = true
				skynet.wait(room)
			end
			socket.write(id, block)
			sent = sent + chunk
		end
		skynet.wait(done)
		local dt = (skynet.hpc() - t0) / 1e9
		socket.close(id)
		return total / dt / (1024 * 1024)
	end)
end

skynet.start(function()
	local echo = skynet.newservice("bench_socket_echo")
	local port = skynet.call(echo, "lua", "port")
	-- bench_socket_only: "outside" (no Lua clients), or one of "sequential",
	-- "concurrent", "bulk"; all three when unset or empty.
	local only = skynet.getenv "bench_socket_only"
	local function wanted(what)
		return only == nil or only == "" or only == what
	end
	if wanted "sequential" then
		bench_sequential(port, 30000)
	end
	if wanted "concurrent" then
		bench_concurrent(port, 16, 4000)
	end
	if wanted "bulk" then
		bench_bulk(port, 256 * 1024 * 1024, 64 * 1024, 512 * 1024)
	end
	skynet.error(string.format("BENCH socket_echo_port %d port", port))
end)
