-- sharedata benchmark: field reads through a proxy (obj.a.b, the per-frame
-- read of a game server), from one service and from two at once, then what a
-- 10,000-entry object takes and how fast it is freed once its readers move on.
local skynet = require "skynet"
local sharedata = require "skynet.sharedata"
local core = require "skynet.sharedata.core"
require "skynet.manager"

local mode = ...

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

-- Reads obj.a.b n times; returns reads per second.
local function read_rate(obj, n)
	local sum = 0
	local t0 = skynet.hpc()
	for _ = 1, n do
		sum = sum + obj.a.b
	end
	local dt = (skynet.hpc() - t0) / 1e9
	assert(sum == n * 42)
	return n / dt
end

local N = 2000000

if mode == "reader" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd)
			local obj = sharedata.query "bench"
			if cmd == "read" then
				skynet.retpack(read_rate(obj, N))
			else
				obj = nil
				sharedata.flush()
				skynet.retpack(true)
			end
		end)
	end)
	return
end

local function big(n, tag)
	local t = { a = { b = 42 }, tag = tag, list = {} }
	for i = 1, n do
		t["key" .. i] = { id = i, name = "item-" .. i, weight = i * 0.5 }
		t.list[i] = i
	end
	return t
end

skynet.start(function()
	sharedata.new("bench", {
		a = { b = 42, c = "text" },
		player = { level = 10, name = "player-one", pos = { x = 1.5, y = 2.5 } },
		items = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 },
	})
	local obj = sharedata.query "bench"
	read_rate(obj, 100000)	-- warm up
	report("sharedata_read", read_rate(obj, N), "reads/s")

	-- two services (two worker threads) reading the same object at once
	local r1 = skynet.newservice(SERVICE_NAME, "reader")
	local r2 = skynet.newservice(SERVICE_NAME, "reader")
	local rates = {}
	local done = 0
	for i, r in ipairs { r1, r2 } do
		skynet.fork(function()
			rates[i] = skynet.call(r, "lua", "read")
			done = done + 1
			if done == 2 then
				skynet.wakeup(rates)
			end
		end)
	end
	skynet.wait(rates)
	report("sharedata_read_2services", rates[1] + rates[2], "reads/s")

	-- a 10,000-entry object: its size, and its release after an update
	local service = skynet.uniqueservice "sharedatad"
	local _, bytes0 = core.stat()
	local t0 = skynet.hpc()
	sharedata.update("bench", big(10000, "v1"))
	report("sharedata_new_10k_ms", (skynet.hpc() - t0) / 1e6, "ms")
	local _, bytes1 = core.stat()
	report("sharedata_object_10k_bytes", bytes1 - bytes0, "bytes")
	assert(obj.tag == "v1")
	-- first reads (each value read once: the native path, then remembered)
	local list = obj.list
	t0 = skynet.hpc()
	local sum = 0
	for i = 1, 10000 do
		sum = sum + list[i]
	end
	report("sharedata_read_first", 10000 / ((skynet.hpc() - t0) / 1e9), "reads/s")
	assert(sum == 10000 * 10001 // 2)
	skynet.call(r1, "lua", "flush")
	skynet.call(r2, "lua", "flush")
	skynet.call(service, "lua", "collect")	-- frees the first, small version
	skynet.sleep(1)
	local n_v1, bytes_v1 = core.stat()
	-- v2 replaces v1; once the three readers have moved on, v1 is freed
	sharedata.update("bench", big(10000, "v2"))
	local _, bytes_both = core.stat()
	t0 = skynet.hpc()
	assert(obj.tag == "v2")
	skynet.call(r1, "lua", "flush")
	skynet.call(r2, "lua", "flush")
	local freed = skynet.call(service, "lua", "collect")
	local n, bytes
	repeat
		n, bytes = core.stat()
	until n == n_v1 or skynet.hpc() - t0 > 1e9
	report("sharedata_release_ms", (skynet.hpc() - t0) / 1e6, "ms")
	report("sharedata_released_bytes", bytes_both - bytes, "bytes")
	assert(freed == 1 and n == n_v1 and bytes == bytes_v1, "v1 freed")
	skynet.abort()
end)
