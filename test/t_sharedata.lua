-- skynet.sharedata: new (table, source, @file), query from several services,
-- proxies, update, delete, deepcopy, flush, errors and memory release.
-- Lines start with "t_sharedata:"; the last one is "t_sharedata: done".
--
-- The config key sharedata_mode = "skynet" runs the scenario on skynet's own
-- sharedata.lua, corelib.lua and sharedatad.lua: then the checks that only
-- our files support (error texts of the library, pairs order, the collect
-- command) are left out.
local skynet = require "skynet"
local sharedata = require "skynet.sharedata"
local core = require "skynet.sharedata.core"
require "skynet.manager"

local mode, arg = ...
local ours = (skynet.getenv "sharedata_mode" or "ours") == "ours"

local function log(fmt, ...)
	skynet.error("t_sharedata: " .. string.format(fmt, ...))
end

-- The error of f(...), without its position prefix.
local function err_of(f, ...)
	local ok, e = pcall(f, ...)
	if ok then
		return "no error"
	end
	return (tostring(e):gsub("^[^:]*:%d+: ", ""))
end

local function sorted_pairs(t)
	local out = {}
	for k, v in pairs(t) do
		out[#out + 1] = tostring(k) .. "=" .. (type(v) == "table" and "table" or tostring(v))
	end
	table.sort(out)
	return table.concat(out, " ")
end

local function pairs_in_order(t)
	local out = {}
	for k, v in pairs(t) do
		out[#out + 1] = tostring(k) .. "=" .. (type(v) == "table" and "table" or tostring(v))
	end
	return table.concat(out, " ")
end

if mode == "reader" then
	local held = {}
	local R = {}
	function R.read(name, ...)
		local p = held[name] or sharedata.query(name)
		held[name] = p
		local v = p
		for _, k in ipairs({ ... }) do
			v = v[k]
		end
		return tostring(v)
	end
	function R.flush()
		sharedata.flush()
	end
	function R.deepcopy(name, ...)
		local t = sharedata.deepcopy(name, ...)
		return getmetatable(t) == nil and sorted_pairs(t) or "has a metatable"
	end
	function R.drop(name)
		if name then
			held[name] = nil
		else
			held = {}
		end
		collectgarbage()
		collectgarbage()
	end
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, ...)
			skynet.retpack(R[cmd](...))
		end)
	end)
	return
end

-- The object sharedatad serves for name now (skynet's query protocol).
local function current(name)
	local service = skynet.uniqueservice "sharedatad"
	local obj = skynet.call(service, "lua", "query", name)
	skynet.send(service, "lua", "confirm", obj)
	return obj
end

-- Readers confirm what they got with a plain send: counts and frees settle
-- a little after the calls that cause them.
local function wait_for_refs(obj, want)
	local n
	for _ = 1, 300 do
		n = core.getref(obj)
		if n == want then
			break
		end
		skynet.sleep(1)
	end
	return n
end

local function wait_for_stat(objects)
	local n, bytes
	for _ = 1, 300 do
		n, bytes = core.stat()
		if n == objects then
			break
		end
		skynet.sleep(1)
	end
	return n, bytes
end

skynet.start(function()
	log("stat start %d %d", core.stat())

	-- new from a table
	sharedata.new("cfg", {
		a = 1, b = { "hello", "world" }, c = { x = { y = 3 } },
		f = 1.5, t = true, s = "str", [10] = 10, [-1] = "neg",
	})
	local p = sharedata.query "cfg"
	log("index %s %s %s %s %s", p.a, p.f, p.t, p.s, p.missing)
	log("nested %s %s %s", p.c.x.y, tostring(p.c == p.c), type(p.c))
	log("len %d %d", #p.b, #p)
	local words = {}
	for i, w in ipairs(p.b) do
		words[#words + 1] = i .. ":" .. w
	end
	log("ipairs %s", table.concat(words, " "))
	log("pairs contents %s", sorted_pairs(p))
	if ours then
		log("pairs order %s", pairs_in_order(p))
	end
	log("write a %s", err_of(function() p.a = 5 end) ~= "no error")
	log("write nested %s", err_of(function() p.c.x.z = 1 end) ~= "no error")
	log("after writes %s %s", p.a, tostring(p.c.x.z))
	if ours then
		log("write error %s", err_of(function() p.c.x.z = 1 end))
	end
	local copy = skynet.unpack(skynet.packstring(p))
	log("packed %s %s %s", copy.a, copy.c.x.y, tostring(getmetatable(copy)))

	-- new from Lua source, with arguments; globals or a returned table
	sharedata.new("src", "n = ... ; list = { 1, 2, 3 } ; s = string.rep('x', 3)", 42)
	local q = sharedata.query "src"
	log("source %s %d %s %s", q.n, #q.list, q.s, tostring(q.string))
	sharedata.new("ret", "local a = ... return { sum = a + 1 }", 1)
	log("source return %s", sharedata.query("ret").sum)

	-- new from a file
	local path = os.tmpname()
	local f = assert(io.open(path, "w"))
	f:write("return { from = 'file', arg = ..., list = { 'x', 'y' } }\n")
	f:close()
	sharedata.new("file", "@" .. path, "A")
	os.remove(path)
	local fp = sharedata.query "file"
	log("file %s %s %s", fp.from, fp.arg, fp.list[2])

	-- several services read the same data
	local r1 = skynet.newservice(SERVICE_NAME, "reader")
	local r2 = skynet.newservice(SERVICE_NAME, "reader")
	log("readers %s %s %s", skynet.call(r1, "lua", "read", "cfg", "c", "x", "y"),
		skynet.call(r2, "lua", "read", "cfg", "b", 2), skynet.call(r2, "lua", "read", "src", "n"))

	-- update: existing proxies (and children held) see the new version
	local c, b = p.c, p.b
	local v1 = current "cfg"
	sharedata.update("cfg", { a = 2, c = { x = { y = 4 } }, new = "yes" })
	log("updated %s %s %s %s", p.a, c.x.y, p.new, tostring(p.b))
	log("orphan %s", err_of(function() return b[1] end))
	log("readers updated %s %s", skynet.call(r1, "lua", "read", "cfg", "a"),
		skynet.call(r2, "lua", "read", "cfg", "c", "x", "y"))

	-- deepcopy: plain tables
	local dc = sharedata.deepcopy "cfg"
	log("deepcopy %s %s %s", tostring(getmetatable(dc)), dc.a, dc.c.x.y)
	log("deepcopy path %s %s %s", sorted_pairs(sharedata.deepcopy("cfg", "c", "x")),
		sharedata.deepcopy("cfg", "a"), tostring((sharedata.deepcopy("cfg", "nope"))))
	log("deepcopy uncached %s", skynet.call(r2, "lua", "deepcopy", "file"))

	-- the first version is held by nobody once every reader moved on
	b = nil
	skynet.call(r1, "lua", "flush")
	skynet.call(r2, "lua", "flush")
	sharedata.flush()
	log("old refs %d", wait_for_refs(v1, 0))

	-- a second update, then flush: readers that did not read meanwhile move too
	local v2 = current "cfg"
	sharedata.update("cfg", { a = 3, c = { x = { y = 5 } } })
	skynet.call(r1, "lua", "flush")
	skynet.call(r2, "lua", "flush")
	log("flushed %s %s", skynet.call(r1, "lua", "read", "cfg", "a"), p.a)
	sharedata.flush()
	log("second old refs %d", wait_for_refs(v2, 0))

	if ours then
		local service = skynet.uniqueservice "sharedatad"
		local freed, held = skynet.call(service, "lua", "collect")
		log("collect %d %d", freed, held)
		log("stale %s", err_of(core.index, v1, "a"))
		log("stat live %d", (wait_for_stat(4)))
	end

	if ours then
		-- a reader that dropped its proxy holds nothing, and its monitor lets
		-- go of the next version at once
		sharedata.new("lone", { v = 1 })
		local l1 = current "lone"
		log("lone read %s", skynet.call(r1, "lua", "read", "lone", "v"))
		log("lone held %d", wait_for_refs(l1, 2))
		skynet.call(r1, "lua", "drop", "lone")
		log("lone dropped %d", wait_for_refs(l1, 1))
		sharedata.update("lone", { v = 2 })
		local l2 = current "lone"
		log("lone refs %d %d", core.getref(l1), wait_for_refs(l2, 1))
		sharedata.delete "lone"
	end

	-- delete: a held proxy still reads its version; a new query fails
	local v3 = current "cfg"
	sharedata.delete "cfg"
	log("deleted %s %s", p.a, tostring(pcall(sharedata.query, "cfg")))
	if ours then
		log("query deleted %s", err_of(sharedata.query, "cfg"))
	end

	-- the errors
	if ours then
		log("bad name %s", err_of(sharedata.new, 1, {}))
		log("bad value %s", err_of(sharedata.new, "x", print))
		log("bad type %s", err_of(sharedata.new, "x", "f = print"))
		log("bad nested %s", err_of(sharedata.new, "x", "a = { b = { coroutine.create(print) } }"))
		log("bad syntax %s", err_of(sharedata.new, "x", "a = = 1"))
		log("bad run %s", err_of(sharedata.new, "x", "error('boom', 0)"))
		log("bad file %s", err_of(sharedata.new, "x", "@/nonexistent/data.lua"))
		log("bad binary %s", err_of(sharedata.new, "x", string.dump(function() end)))
		log("bad key %s", err_of(sharedata.new, "x", "t = { [1.5] = 1 }"))
		log("exists %s", err_of(sharedata.new, "src", {}))
		log("update bad %s %s", err_of(sharedata.update, "src", "n = = 1"), sharedata.query("src").n)
		log("delete missing %s", err_of(sharedata.delete, "nope"))
	end
	local cyc = {}
	cyc.self = cyc
	log("core cycle %s", err_of(core.new, cyc))
	local deep = {}
	for _ = 1, 300 do
		deep = { deep }
	end
	log("core deep %s", err_of(core.new, deep))
	log("core not a table %s", err_of(core.new, "x"))
	log("core type %s", err_of(core.index, "x", "a"))
	log("core forged %s", err_of(core.index, skynet.unpack("\3" .. string.pack("<I8", 0x7fff00000000)), "a"))
	log("core box %s", err_of(core.box, nil))
	log("core needupdate %s", err_of(core.needupdate, {}))
	log("core delete foreign %s", err_of(core.delete, current "src"))
	log("core float key %s", err_of(core.index, current "src", 1.5))

	-- memory: delete everything; once no reader holds a version, all is freed
	sharedata.delete "src"
	sharedata.delete "ret"
	sharedata.delete "file"
	skynet.call(r1, "lua", "drop")
	skynet.call(r2, "lua", "drop")
	p, c, q, fp = nil, nil, nil, nil
	collectgarbage()
	collectgarbage()
	log("last refs %d", wait_for_refs(v3, 0))
	if ours then
		local service = skynet.uniqueservice "sharedatad"
		local freed, held = skynet.call(service, "lua", "collect")
		log("final collect %d %d", freed, held)
		log("stat end %d %d", wait_for_stat(0))
	end
	log("done")
	skynet.abort()
end)
