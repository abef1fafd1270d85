-- A reader for bench_lib_sharetable.lua.
--   query(n) -> mean milliseconds of sharetable.query "items" (n queries)
--   memory   -> KiB of Lua memory that holding "items" adds, and holding
--               the one-entry table "small2"
local skynet = require "skynet"
local sharetable = require "skynet.sharetable"

local cmd = {}
local keep = {}

function cmd.query(n)
	local t = sharetable.query "items"
	assert(#t == 10000 and t[10000].name == "item10000")
	local t0 = skynet.hpc()
	for _ = 1, n do
		t = sharetable.query "items"
	end
	local ms = (skynet.hpc() - t0) / 1e6 / n
	assert(t[1].price == 3)
	return ms
end

-- KiB that holding the table `name` adds (after a query of `warm`, which
-- sets up the library, its service address and its bookkeeping)
local function held_kib(name)
	collectgarbage()
	collectgarbage()
	local before = collectgarbage "count"
	keep[name] = sharetable.query(name)
	collectgarbage()
	collectgarbage()
	return collectgarbage "count" - before
end

function cmd.memory()
	keep.warm = sharetable.query "warm"
	held_kib "small"
	local small = held_kib "small2"
	local big = held_kib "items"
	assert(keep.items[5000].id == 5000 and keep.small2[1] == 1)
	return big, small
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, command, ...)
		skynet.retpack(cmd[command](...))
	end)
end)
