-- skynet.sharetable: tables shared by the services of the process without
-- copying (skynet's sharetable).
--
--   sharetable.loadfile(name, ...)           the table that Lua file `name`
--                                            returns (the chunk gets ...)
--   sharetable.loadstring(name, source, ...) the table that `source` returns
--   sharetable.loadtable(name, t)            a copy of table `t`
--   sharetable.query(name)          -> the current version of `name`, or nil
--   sharetable.queryall([names])    -> { [name] = table } for the names given
--                                      (all names when there is no list)
--   sharetable.update(name, ...)    in this service, every reference to an
--                                   older version of these names (and to its
--                                   subtables) now points at the current one
--
-- A loaded table is built once, in a Lua state of its own, and shared:
-- what `query` returns reads like a plain table (index, pairs, ipairs, #,
-- next; nested tables are shared too) and costs the reader no copy. Any
-- change to it raises "attempt to change a shared table". Extra arguments
-- to loadfile/loadstring may be nil, booleans, numbers, strings, light
-- userdata and light C functions. Functions in a shared table must have no
-- upvalues (they cannot reach globals); tables in it no metatable.
--
-- Loading a name again makes later queries return the new version. A
-- service that got an older version keeps it, valid, until it exits; the
-- version is then freed once no service holds it ("Delete a version ...").
-- The versions live in the unique service "sharetable" (skynet.service).

local skynet = require "skynet"
local service = require "skynet.service"
local core = require "skynet.sharetable.core"

-- The service that owns every version. It runs as its own chunk: it may use
-- nothing of this file but globals.
local function sharetable_service()
	local skynet = require "skynet"
	local core = require "skynet.sharetable.core"

	local current = {}	-- name -> box of the current version
	local versions = {}	-- getptr() -> { name, box, count, holders = { [service] = true } }
	local holding = {}	-- service -> { getptr(), ... }
	local cmd = {}

	local UNPACK = "local unpack, data, size = ... return unpack(data, size)"

	-- Drops a version nobody holds; the current one stays.
	local function drop_if_unheld(box)
		local ptr = box:getptr()
		local v = versions[ptr]
		if v and v.count > 0 then
			return
		end
		versions[ptr] = nil
		box:close()
	end

	local function install(name, box)
		local old = current[name]
		current[name] = box
		if old then
			drop_if_unheld(old)
		end
	end

	-- Builds a version of `name` from `source` and makes it current.
	-- Replies (true) or (false, error text): callers raise the text.
	local function load_version(name, source, ...)
		local ok, box = pcall(core.matrix, source, ...)
		if ok then
			install(name, box)
			skynet.ret(skynet.pack(true))
		else
			skynet.ret(skynet.pack(false, box))
		end
	end

	function cmd.loadfile(_, name, ...)
		load_version(name, "@" .. name, ...)
	end

	function cmd.loadstring(_, name, source, ...)
		load_version(name, source, ...)
	end

	-- `data` is a packed string, or a pointer and size that the caller
	-- handed over (skynet's own client library sends those).
	function cmd.loadtable(_, name, data, size)
		load_version(name, UNPACK, skynet.unpack, data, size)
		if type(data) ~= "string" then
			skynet.trash(data, size)
		end
	end

	local function hold(source, name)
		local box = current[name]
		local ptr = box:getptr()
		local v = versions[ptr]
		if not v then
			v = { name = name, box = box, count = 0, holders = {} }
			versions[ptr] = v
		end
		if not v.holders[source] then
			v.holders[source] = true
			v.count = v.count + 1
			local list = holding[source]
			if not list then
				list = {}
				holding[source] = list
			end
			list[#list + 1] = ptr
		end
		return ptr
	end

	function cmd.query(source, name)
		if current[name] then
			skynet.ret(skynet.pack(hold(source, name)))
		else
			skynet.ret()
		end
	end

	function cmd.queryall(source, names)
		local ptrs = {}
		if names then
			for _, name in ipairs(names) do
				if current[name] then
					ptrs[name] = hold(source, name)
				end
			end
		else
			for name in pairs(current) do
				ptrs[name] = hold(source, name)
			end
		end
		skynet.ret(skynet.pack(ptrs))
	end

	-- A client exited (its library's finalizer): it holds nothing now.
	function cmd.close(source)
		local list = holding[source]
		if not list then
			return
		end
		holding[source] = nil
		for _, ptr in ipairs(list) do
			local v = versions[ptr]
			if v and v.holders[source] then
				v.holders[source] = nil
				v.count = v.count - 1
				if v.count == 0 and current[v.name] ~= v.box then
					skynet.error(string.format("Delete a version (%s) of %s", ptr, v.name))
					versions[ptr] = nil
					v.box:close()
				end
			end
		end
	end

	skynet.dispatch("lua", function(_, source, command, ...)
		local f = cmd[command]
		if not f then
			error("sharetable: unknown command " .. tostring(command))
		end
		f(source, ...)
	end)

	skynet.info_func(function()
		local info = {}
		for name, box in pairs(current) do
			info[name] = { current = box:getptr(), size = box:size() }
		end
		for ptr, v in pairs(versions) do
			local holders = {}
			for addr in pairs(v.holders) do
				holders[#holders + 1] = skynet.address(addr)
			end
			table.sort(holders)
			local entry = info[v.name]
			entry.history = entry.history or {}
			table.insert(entry.history, string.format("%s [%d]: (%s)", ptr, v.box:size(), table.concat(holders, ",")))
		end
		for _, entry in pairs(info) do
			if entry.history then
				table.sort(entry.history)
				entry.history = table.concat(entry.history, "\n\t")
			end
		end
		return info
	end)
end

local sharetable = {}
local address

local function owner()
	if not address then
		address = service.new("sharetable", sharetable_service)
	end
	return address
end

-- When this service exits, the versions it got may be freed.
setmetatable(sharetable, {
	__gc = function()
		if address then
			skynet.send(address, "lua", "close")
		end
	end,
})

local function loaded(ok, err)
	if not ok then
		error(err, 0)
	end
end

function sharetable.loadfile(name, ...)
	loaded(skynet.call(owner(), "lua", "loadfile", name, ...))
end

function sharetable.loadstring(name, source, ...)
	loaded(skynet.call(owner(), "lua", "loadstring", name, source, ...))
end

function sharetable.loadtable(name, t)
	assert(type(t) == "table", "sharetable.loadtable: a table is expected")
	loaded(skynet.call(owner(), "lua", "loadtable", name, skynet.packstring(t)))
end

-- name -> { [version] = true }: the versions this service got, for update.
local got = {}

local function record(name, ptr)
	local t = core.clone(ptr)
	local seen = got[name]
	if not seen then
		seen = {}
		got[name] = seen
	end
	seen[t] = true
	return t
end

function sharetable.query(name)
	local ptr = skynet.call(owner(), "lua", "query", name)
	if ptr then
		return record(name, ptr)
	end
end

function sharetable.queryall(names)
	local list = {}
	local ptrs = skynet.call(owner(), "lua", "queryall", names)
	for name, ptr in pairs(ptrs) do
		list[name] = record(name, ptr)
	end
	return list
end

---------------------------------------------------------------- update

local is_shared = core.is_sharedtable
local stackvalues = core.stackvalues
local getinfo, getlocal, setlocal = debug.getinfo, debug.getlocal, debug.setlocal
local getupvalue, setupvalue = debug.getupvalue, debug.setupvalue
local getuservalue, setuservalue = debug.getuservalue, debug.setuservalue
local getmetatable, setmetatable = debug.getmetatable, debug.setmetatable
local next, type, rawget, rawset = next, type, rawget, rawset

-- Marks a subtable that the new version does not have.
local GONE = {}

-- Maps `old` (a version) and each of its subtables to its counterpart in
-- `new` (GONE where there is none), following the same keys.
local function map_version(old, new, map)
	if map[old] ~= nil then
		return
	end
	map[old] = new
	for k, v in next, old do
		if type(v) == "table" then
			local nv = new ~= GONE and rawget(new, k) or nil
			if type(nv) ~= "table" then
				nv = GONE
			end
			map_version(v, nv, map)
		end
	end
end

-- Rewrites every reference to a mapped table that this service's state
-- can reach: from the registry, the stacks of its threads, upvalues,
-- metatables and user values, except the tables in `own` and the frames
-- of the running thread from `skip_below` (sharetable.update) down.
local function rewrite(map, own, running, skip_below)
	local seen = {}
	local visit

	local function new_of(v)
		local nv = map[v]
		if nv == GONE then
			return nil
		end
		return nv
	end

	local function fix_metatable(v)
		local mt = getmetatable(v)
		if mt == nil then
			return
		end
		if map[mt] then
			setmetatable(v, new_of(mt))
		else
			visit(mt)
		end
	end

	local function fix_table(t)
		local moved
		for k, v in next, t do
			if map[v] then
				rawset(t, k, new_of(v))
			else
				visit(v)
			end
			if map[k] then
				moved = moved or {}
				moved[#moved + 1] = k
			else
				visit(k)
			end
		end
		if moved then
			for _, k in ipairs(moved) do
				local v = rawget(t, k)
				rawset(t, k, nil)
				local nk = new_of(k)
				if nk ~= nil then
					rawset(t, nk, v)
				end
			end
		end
		fix_metatable(t)
	end

	local function fix_function(f)
		local i = 1
		while true do
			local name, v = getupvalue(f, i)
			if name == nil then
				break
			end
			if map[v] then
				setupvalue(f, i, new_of(v))
			else
				visit(v)
			end
			i = i + 1
		end
	end

	local function fix_userdata(u)
		local n = 1
		while true do
			local v, ok = getuservalue(u, n)
			if not ok then
				break
			end
			if map[v] then
				setuservalue(u, new_of(v), n)
			else
				visit(v)
			end
			n = n + 1
		end
		fix_metatable(u)
	end

	-- Locals (and varargs) of each frame of `co`, from `level` up. For the
	-- running thread the levels are counted from this function.
	local function fix_frames(co, level)
		while true do
			local info = getinfo(co, level, "f")
			if not info then
				break
			end
			visit(info.func)
			for _, step in ipairs { 1, -1 } do
				local i = step
				while true do
					local name, v = getlocal(co, level, i)
					if name == nil then
						break
					end
					if map[v] then
						setlocal(co, level, i, new_of(v))
					else
						visit(v)
					end
					i = i + step
				end
			end
			level = level + 1
		end
	end

	local function fix_thread(co)
		if co == running then
			-- Skip the frames of this update: find sharetable.update
			-- (levels counted from here: 1 is this function), then start
			-- at its caller, one level further again as fix_frames counts.
			local level = 1
			while true do
				local info = getinfo(co, level, "f")
				if not info then
					return
				end
				if info.func == skip_below then
					break
				end
				level = level + 1
			end
			fix_frames(co, level + 2)
		else
			local values = {}
			for i = 1, stackvalues(co, values) do
				visit(values[i])
			end
			fix_frames(co, 0)
		end
	end

	local fix = {
		table = fix_table,
		["function"] = fix_function,
		userdata = fix_userdata,
		thread = fix_thread,
	}

	function visit(v)
		if v == nil or seen[v] or own[v] or map[v] then
			return
		end
		local f = fix[type(v)]
		if f and not is_shared(v) then
			seen[v] = true
			f(v)
		end
	end

	seen[seen] = true
	visit(running)
	-- the metatables of the types without one per value
	for _, v in ipairs { false, 0, "", print, running, debug.upvalueid(new_of, 1) } do
		fix_metatable(v)
	end
	fix_metatable(nil)
	visit(debug.getregistry())
end

function sharetable.update(...)
	local map = {}
	for _, name in ipairs { ... } do
		local seen = got[name]
		if seen then
			local new = sharetable.query(name)
			for old in pairs(seen) do
				if old ~= new then
					map_version(old, new or GONE, map)
					seen[old] = nil
				end
			end
		end
	end
	if next(map) then
		local own = { [map] = true, [got] = true, [GONE] = true }
		rewrite(map, own, coroutine.running(), sharetable.update)
	end
end

return sharetable
