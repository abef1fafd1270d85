-- pack+unpack benchmark, run in its own service by bench_main.lua.
local skynet = require "skynet"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

local function bench_pack(n)
	local t = {
		id = 10001, name = "player-one", level = 42, exp = 123456789, ratio = 0.75,
		pos = { x = 10.5, y = -3.25, z = 0 },
		items = { { id = 1, count = 3 }, { id = 7, count = 1 }, { id = 42, count = 99 } },
		tags = { "alpha", "beta", "gamma", "delta" },
		flags = { online = true, banned = false, vip = true },
		guild = { id = 77, name = "the-skynet-guild", members = { 1, 2, 3, 4, 5, 6, 7, 8 } },
		last_login = 1764115200, motto = "ship it, then measure it",
		skills = { 3, 14, 15, 92, 65, 35 },
	}
	local msg, sz = skynet.pack(t)
	skynet.trash(msg, sz)
	local pack, unpack, trash = skynet.pack, skynet.unpack, skynet.trash
	local t0 = skynet.hpc()
	for i = 1, n do
		local m, s = pack(t)
		unpack(m, s)
		trash(m, s)
	end
	local dt = (skynet.hpc() - t0) / 1e9
	return n / dt, sz
end

local reported

skynet.start(function()
	skynet.dispatch("lua", function(_, _, n)
		local rate, sz = bench_pack(n)
		if not reported then
			reported = true
			report("pack_unpack_bytes", sz, "bytes")
		end
		skynet.ret(skynet.pack(rate, sz))
	end)
end)
