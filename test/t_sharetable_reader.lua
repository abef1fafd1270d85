-- A reader of t_sharetable's shared tables. It keeps the version of "cfg"
-- it got in every kind of place that sharetable.update must rewrite, and
-- answers lua commands:
--   hold          -> the version queried
--   versions      -> the version seen through each place, as "a b c ..."
--   update        -> sharetable.update("cfg"), then versions
--   churn(n)      -> n rounds of query, full read, collection; the
--                    versions seen, as text
--   memory        -> KiB of Lua memory a query of "big" added
--   write         -> the error of a write to the held table
local skynet = require "skynet"
local sharetable = require "skynet.sharetable"

local held = {}		-- field
local keyed = {}	-- key
local proxy		-- metatable __index
local upvalue		-- upvalue of `through_upvalue`
local co		-- a suspended coroutine with it in a local
local list = {}		-- a subtable, held alone

local function through_upvalue()
	return upvalue.version
end

local function versions()
	local k = next(keyed)
	local _, in_co = coroutine.resume(co)
	return table.concat({
		held.cfg.version,
		k.version,
		proxy.version,
		through_upvalue(),
		in_co,
		list.sub.name,
	}, " ")
end

local cmd = {}

function cmd.hold()
	local t = sharetable.query "cfg"
	held.cfg = t
	keyed[t] = true
	proxy = setmetatable({}, { __index = t })
	upvalue = t
	co = coroutine.create(function()
		local mine = t
		while true do
			coroutine.yield(mine.version)
		end
	end)
	coroutine.resume(co)
	list.sub = t.sub
	return t.version
end

function cmd.versions()
	return versions()
end

function cmd.update()
	sharetable.update "cfg"
	return versions()
end

local function read_all(t)
	local n, s = 0, 0
	for k, v in pairs(t.items) do
		n = n + 1
		s = s + v
	end
	assert(#t.items == n)
	return t.version, n, s
end

function cmd.churn(n)
	local seen = {}
	for i = 1, n do
		local t = sharetable.query "cfg"
		local version, count, sum = read_all(t)
		-- every version has items 1..count, item i = i * version
		assert(sum == version * count * (count + 1) // 2, "torn read")
		seen[#seen + 1] = version
		collectgarbage()
		skynet.sleep(1)
	end
	return table.concat(seen, ",")
end

function cmd.memory()
	local keep = {}
	collectgarbage()
	collectgarbage()
	local before = collectgarbage "count"
	keep[1] = sharetable.query "big"
	collectgarbage()
	collectgarbage()
	local after = collectgarbage "count"
	assert(#keep[1].list == 10000)
	return string.format("%.3f", after - before)
end

function cmd.write()
	local ok, err = pcall(function() held.cfg.sub.name = "changed" end)
	return tostring(ok) .. " " .. tostring(err)
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, command, ...)
		skynet.retpack(cmd[command](...))
	end)
end)
