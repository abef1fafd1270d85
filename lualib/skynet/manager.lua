-- skynet.manager: service management helpers, added to the skynet module.
--   launch(mod, ...)        start any (C) service, returns its handle
--   kill(addr)              retire a service without its exit logic
--   abort()                 retire every service
--   register(name)          name this service
--   name(name, handle)      name another service
--   forward_type(map, f)    start in forward mode with a type remap
--   filter(f, start)        start with a message pre-filter
--   monitor(service, query) install a (global, unique) exit monitor
-- Names starting with '.' are local to the node; other names are global and
-- are registered through the harbor slave (.cslave).

local skynet = require "skynet"
local core = require "skynet.core"

-- ":0000000a" or a number -> number; anything else -> nil
local function as_handle(addr)
	local kind = type(addr)
	if kind == "number" then
		return addr
	elseif kind == "string" then
		local hex = string.match(addr, "^:(%x+)")
		if hex then
			return tonumber(hex, 16)
		end
	end
end

function skynet.launch(...)
	local addr = core.command("LAUNCH", table.concat({ ... }, " "))
	if addr then
		return tonumber(string.sub(addr, 2), 16)
	end
end

function skynet.kill(name)
	local handle = as_handle(name)
	if handle then
		skynet.send(".launcher", "lua", "REMOVE", handle, true)
		name = skynet.address(handle)
	end
	core.command("KILL", name)
end

function skynet.abort()
	core.command "ABORT"
end

-- Registers a global name (returns true), or returns false for a local one.
local function global_name(name, handle)
	local first = string.sub(name, 1, 1)
	assert(first ~= ":")
	if first == "." then
		return false
	end
	assert(#name < 16)	-- names travel as 16 zero-padded bytes
	assert(tonumber(name) == nil)	-- a number is not a name
	skynet.send(".cslave", "lua", "REGISTER", name, handle or skynet.self())
	return true
end

function skynet.register(name)
	if not global_name(name) then
		core.command("REG", name)
	end
end

function skynet.name(name, handle)
	if not global_name(name, handle) then
		core.command("NAME", name .. " " .. skynet.address(handle))
	end
end

local dispatch_message = skynet.dispatch_message

-- Forward mode: the kernel leaves each message to us.  Types found in `map`
-- are dispatched as the mapped type and the handler owns the message; the
-- others are dispatched as they are and freed afterwards.
function skynet.forward_type(map, start_func)
	core.callback(function(ptype, msg, sz, ...)
		local mapped = map[ptype]
		if mapped then
			dispatch_message(mapped, msg, sz, ...)
		else
			local ok, err = pcall(dispatch_message, ptype, msg, sz, ...)
			core.trash(msg, sz)
			if not ok then
				error(err)
			end
		end
	end, true)
	skynet.timeout(0, function()
		skynet.init_service(start_func)
	end)
end

-- `f(type, msg, sz, session, source)` returns the values to dispatch.
function skynet.filter(f, start_func)
	core.callback(function(...)
		dispatch_message(f(...))
	end)
	skynet.timeout(0, function()
		skynet.init_service(start_func)
	end)
end

function skynet.monitor(service, query)
	local monitor
	if query then
		monitor = skynet.queryservice(true, service)
	else
		monitor = skynet.uniqueservice(true, service)
	end
	assert(monitor, "Monitor launch failed")
	core.command("MONITOR", string.format(":%08x", monitor))
	return monitor
end

return skynet
