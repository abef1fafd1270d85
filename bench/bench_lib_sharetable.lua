-- skynet.sharetable: query of a 10,000-entry table, and the Lua memory
-- that holding it adds to a reader. Readers are bench_sharetable_reader
-- services.
local skynet = require "skynet"
local sharetable = require "skynet.sharetable"
local core = require "skynet.sharetable.core"

local ENTRIES = 10000
local READERS = 16
local QUERIES = 2000

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.4f %s", name, value, unit))
end

skynet.start(function()
	local items = {}
	for i = 1, ENTRIES do
		items[i] = { id = i, name = "item" .. i, price = i * 3, tags = { "sale", "new" } }
	end
	for _, name in ipairs { "warm", "small", "small2" } do
		sharetable.loadtable(name, { 1 })
	end
	local _, bytes0 = core.matrices()
	local t0 = skynet.hpc()
	sharetable.loadtable("items", items)
	local load_ms = (skynet.hpc() - t0) / 1e6
	local _, bytes1 = core.matrices()

	local readers = {}
	for i = 1, READERS do
		readers[i] = skynet.newservice "bench_sharetable_reader"
	end
	local ms = skynet.call(readers[1], "lua", "query", QUERIES)
	local total, most, small = 0, 0, 0
	for _, r in ipairs(readers) do
		local kib, kib_small = skynet.call(r, "lua", "memory")
		total = total + kib
		most = math.max(most, kib)
		small = small + kib_small
	end
	report("sharetable_query_ms", ms, "ms")
	report("sharetable_reader_kib", total / READERS, "KiB")
	report("sharetable_reader_max_kib", most, "KiB")
	report("sharetable_reader_small_kib", small / READERS, "KiB")
	report("sharetable_table_kib", (bytes1 - bytes0) / 1024, "KiB")
	report("sharetable_load_ms", load_ms, "ms")
	skynet.abort()
end)
