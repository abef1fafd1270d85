-- skynet.sharedata: data made once by the sharedatad service and read by any
-- service of the process through read-only proxies, without copying.
--
--   new(name, value, ...)     value: a table, Lua source text, "@file" (the
--                             chunk runs with `...`; the table it returns, or
--                             else the globals it set, are the data), or nil
--                             (an empty table)
--   query(name)               a read-only proxy of the data (one per name and
--                             service while it is in use)
--   update(name, value, ...)  a new version: every proxy moves to it by itself
--   delete(name)              proxies in use keep reading the last version
--   flush()                   this service's proxies move to their newest
--                             version now, then garbage is collected
--   deepcopy(name, k1, ...)   a plain Lua copy of the data, or of the value at
--                             the path k1, ...
--
-- A monitor coroutine waits in sharedatad for each proxy's next version and
-- stages it in the proxy. It holds the proxy weakly: once the service drops
-- every reference to a proxy, the proxy is collected and its version is no
-- longer held.

local skynet = require "skynet"
local sd = require "skynet.sharedata.corelib"

local sharedatad	-- address of the sharedatad service

skynet.init(function()
	sharedatad = skynet.uniqueservice "sharedatad"
end)

local sharedata = {}
local cache = setmetatable({}, { __mode = "v" })	-- name -> proxy

local function check_name(fname, name)
	if type(name) ~= "string" then
		error(string.format("sharedata.%s: the name must be a string, got %s", fname, type(name)), 3)
	end
end

local function check_value(fname, v)
	local t = type(v)
	if t ~= "table" and t ~= "string" and t ~= "nil" then
		error(string.format("sharedata.%s: the value must be a table, Lua source or \"@file\", got %s",
			fname, t), 3)
	end
end

-- Raises the error that sharedatad answered with, if any.
local function answered(ok, err)
	if ok == false then
		error(err, 3)
	end
end

local function monitor(name, holder, cobj)
	while true do
		cobj = skynet.call(sharedatad, "lua", "monitor", name, cobj)
		if cobj == nil then
			break	-- deleted
		end
		local proxy = holder[1]
		local ok, err = true, nil
		if proxy then
			ok, err = pcall(sd.update, proxy, cobj)
		end
		skynet.send(sharedatad, "lua", "confirm", cobj)
		if not ok then
			skynet.error(string.format("sharedata %s: update failed: %s", name, tostring(err)))
			return
		end
		if proxy == nil then
			return	-- nobody reads it any more
		end
		proxy = nil
	end
	local proxy = holder[1]
	if proxy and cache[name] == proxy then
		cache[name] = nil
	end
end

function sharedata.query(name)
	check_name("query", name)
	local proxy = cache[name]
	if proxy then
		return proxy
	end
	local cobj = skynet.call(sharedatad, "lua", "query", name)
	if cobj == nil then
		error(string.format("sharedata.query: no data named %q", name), 2)
	end
	proxy = cache[name]
	if proxy and sd.object(proxy) == cobj then
		-- another coroutine of this service got it meanwhile
		skynet.send(sharedatad, "lua", "confirm", cobj)
		return proxy
	end
	proxy = sd.box(cobj, name)
	skynet.send(sharedatad, "lua", "confirm", cobj)
	skynet.fork(monitor, name, setmetatable({ proxy }, { __mode = "v" }), cobj)
	cache[name] = proxy
	return proxy
end

function sharedata.new(name, v, ...)
	check_name("new", name)
	check_value("new", v)
	answered(skynet.call(sharedatad, "lua", "new", name, v, ...))
end

function sharedata.update(name, v, ...)
	check_name("update", name)
	check_value("update", v)
	answered(skynet.call(sharedatad, "lua", "update", name, v, ...))
end

function sharedata.delete(name)
	check_name("delete", name)
	answered(skynet.call(sharedatad, "lua", "delete", name))
end

function sharedata.flush()
	for _, proxy in pairs(cache) do
		sd.flush(proxy)
	end
	collectgarbage()
end

function sharedata.deepcopy(name, ...)
	check_name("deepcopy", name)
	local proxy = cache[name]
	if proxy then
		return sd.copy(sd.object(proxy), ...)
	end
	local cobj = skynet.call(sharedatad, "lua", "query", name)
	if cobj == nil then
		error(string.format("sharedata.deepcopy: no data named %q", name), 2)
	end
	local ok, ret = pcall(sd.copy, cobj, ...)
	skynet.send(sharedatad, "lua", "confirm", cobj)
	if not ok then
		error(ret, 2)
	end
	return ret
end

return sharedata
