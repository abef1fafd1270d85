-- skynet.sharetable: load, query, queryall, update, writes, errors, and
-- versions freed when their last reader exits, with several services.
-- Lines start with "t_sharetable:"; the last one is "t_sharetable: done".
local skynet = require "skynet"
local sharetable = require "skynet.sharetable"
local service = require "skynet.service"
local core = require "skynet.sharetable.core"

local function log(...)
	skynet.error("t_sharetable:", ...)
end

local function cfg(version, sub)
	local items = {}
	for i = 1, 100 do
		items[i] = i * version
	end
	return { version = version, items = items, sub = { name = sub } }
end

local function keys(t)
	local k = {}
	for name in pairs(t) do
		k[#k + 1] = tostring(name)
	end
	table.sort(k)
	return table.concat(k, ",")
end

skynet.start(function()
	-- the three ways to load
	sharetable.loadtable("cfg", cfg(1, "one"))
	sharetable.loadstring("str", "local a, b = ... return { a = a, b = b, list = { ... } }", 7, "seven", true)
	sharetable.loadfile(skynet.getenv "root" .. "test/t_sharetable_data.lua", 3, "file")
	local t = sharetable.query "cfg"
	log("query", t.version, #t.items, t.items[100], t.sub.name, core.is_sharedtable(t), core.is_sharedtable(t.sub))
	local s = sharetable.query "str"
	log("loadstring", s.a, s.b, #s.list, tostring(s.list[3]))
	local f = sharetable.query(skynet.getenv "root" .. "test/t_sharetable_data.lua")
	log("loadfile", f.label, f.values[10], f.lookup.v4, f.sum(f.values))
	log("unknown", tostring((sharetable.query "nothing")))
	local n, sum = 0, 0
	for i, v in ipairs(t.items) do
		n, sum = n + 1, sum + v
	end
	log("ipairs", n, sum, "pairs", keys(t))

	-- writes
	for _, w in ipairs {
		function() t.version = 2 end,
		function() t.new = 1 end,
		function() t.items[101] = 1 end,
		function() rawset(t.sub, "name", "x") end,
		function() table.insert(t.items, 1) end,
		function() setmetatable(t, {}) end,
	} do
		local ok, err = pcall(w)
		log("write", ok, err:match "attempt to change a shared table$")
	end
	log("after writes", t.version, #t.items, t.sub.name)

	-- errors come back to the caller
	log("syntax", select(2, pcall(sharetable.loadstring, "bad", "return {")))
	log("upvalue", select(2, pcall(sharetable.loadstring, "bad", "local x = 1 return { f = function() return x end }")))
	log("not a table", select(2, pcall(sharetable.loadstring, "bad", "return 1")))
	log("bad name", tostring((sharetable.query "bad")))

	-- queryall, with and without a list
	local all = sharetable.queryall { "cfg", "str", "nothing" }
	log("queryall list", keys(all), all.cfg == t, all.str.a)
	log("queryall", keys(sharetable.queryall()))

	-- a pointer handed over, as skynet's own client library sends it
	local owner = service.query "sharetable"
	skynet.call(owner, "lua", "loadtable", "raw", skynet.pack { handed = "over", 1, 2 })
	local raw = sharetable.query "raw"
	log("handed", raw.handed, #raw)

	-- the native module
	local m = core.matrix("local a, b = ... return { a, b, name = 'direct' }", 1, "two")
	local ptr = m:getptr()
	local direct = core.clone(ptr)
	log("matrix", m:size() > 0, type(ptr), direct[1], direct[2], direct.name)
	m:close()
	-- this service holds the version it cloned: it lives on
	log("closed box", m:getptr() == nil, m:size(), direct.name, core.clone(ptr) == direct)
	local p, sz = skynet.pack(1)
	log("forged", select(2, pcall(core.clone, p)):match "is not a live shared table$")
	skynet.trash(p, sz)
	log("bad args", select(2, pcall(core.matrix, "return {}", {})), select(2, pcall(core.matrix, "return {}", print, function() end)))
	local fn = function() end
	local co = coroutine.create(fn)
	local values = {}
	log("stackvalues", core.stackvalues(co, values), values[1] == fn, core.stackvalues(coroutine.running(), {}))

	-- readers keep their version until they update
	local readers = {}
	for i = 1, 3 do
		readers[i] = skynet.newservice "t_sharetable_reader"
		log("reader holds", skynet.call(readers[i], "lua", "hold"))
	end
	log("write in reader", skynet.call(readers[1], "lua", "write"))
	sharetable.loadtable("cfg", cfg(2, "two"))
	log("old version", skynet.call(readers[1], "lua", "versions"))
	log("updated", skynet.call(readers[1], "lua", "update"))
	log("mine still", t.version, sharetable.query("cfg").version)

	-- readers churn (query, read, collect) while versions come and go
	local results = {}
	for i = 2, 3 do
		skynet.fork(function()
			local r = skynet.call(readers[i], "lua", "churn", 30)
			results[#results + 1] = r
		end)
	end
	for v = 3, 8 do
		skynet.sleep(3)
		sharetable.loadtable("cfg", cfg(v, "v" .. v))
	end
	while #results < 2 do
		skynet.sleep(5)
	end
	for _, r in ipairs(results) do
		local first, last = r:match "^(%d+).-(%d+)$"
		log("churn", tonumber(first) < tonumber(last), tonumber(last) <= 8)
	end

	-- a reader's memory does not grow with the table
	local big = { list = {} }
	for i = 1, 10000 do
		big.list[i] = { i, tostring(i) }
	end
	sharetable.loadtable("big", big)
	local kib = tonumber(skynet.call(readers[1], "lua", "memory"))
	log("reader memory below 2 KiB", kib < 2, kib)

	-- versions go with their last reader
	local count = core.matrices()
	for _, r in ipairs(readers) do
		skynet.kill(r)
	end
	skynet.sleep(20)
	local after = core.matrices()
	-- the names loaded (cfg, str, file, raw, big) keep their current
	-- version; this service still holds cfg versions 1 and 2 and `direct`
	log("matrices freed", count > after, after)
	log "done"
	skynet.abort()
end)
