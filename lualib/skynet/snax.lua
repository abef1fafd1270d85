-- skynet.snax: services whose methods are called by name.
--
-- A snax service is a file on the config `snax` path, run by `snaxd <name>`
-- (see snax.interface for the file format). A client reads the same file to
-- learn the method ids, then talks to the service over protocol `snax`
-- (PTYPE_SNAX, payload pack(method_id, ...)) through an object:
--   obj.post.<f>(...)     send to accept.<f> (no answer)
--   obj.req.<f>(...)      call response.<f>, returns its results
--   obj.handle, obj.type  the service and the file name; tostring(obj) is
--                         "[<type>:<hex handle>]"
-- Naming a method the group lacks fails at once: "post <type>:<f> no exist",
-- "request <type>:<f> no exist".
--
--   interface(name)             { name, accept = {f=id}, response = {f=id},
--                                 system = {init=1, exit=2, hotfix=3, profile=4} }
--   newservice(name, ...)       start snaxd <name>, init(...), return an object
--   rawnewservice(name, ...)    the same, returning the handle
--   uniqueservice(name, ...)    one per node (service_mgr key "snaxd.<name>")
--   globalservice(name, ...)    one per network (key "@snaxd.<name>")
--   queryservice(name)          wait for the node's unique one
--   queryglobal(name)           wait for the network's global one
--   bind(handle, type)          an object for an existing service
--   self()                      the object of the running snax service
--   kill(obj, ...)              call its exit(...), after which it exits
--   exit(...)                   kill(self(), ...)
--   hotfix(obj, source, ...)    patch the running service (see snax.hotfix);
--                               returns the patch's hotfix(...) results or
--                               raises the patch's error
--   profile_info(obj)           { method = { count, time } }
--   printf(fmt, ...)            skynet.error(string.format(fmt, ...))
-- Inside a snax service, snax.enablecluster() makes it answer the same
-- messages on protocol `lua` too (set up by snaxd).
--
-- Config `snax_interface_g` names a module used as the global table when a
-- client reads snax files; by default it is a table whose `require` does
-- nothing, so a file's top level must not depend on its globals.

local skynet = require "skynet"
local interface = require "snax.interface"

local snax = {}

local shared_globals
do
	local module_name = skynet.getenv "snax_interface_g"
	if module_name then
		shared_globals = require(module_name)
	else
		shared_globals = { require = function() end }
	end
end

skynet.register_protocol {
	name = "snax",
	id = skynet.PTYPE_SNAX,
	pack = skynet.pack,
	unpack = skynet.unpack,
}

local interfaces = {}	-- name -> method id maps

function snax.interface(name)
	local known = interfaces[name]
	if known then
		return known
	end
	local methods = interface(name, shared_globals)
	local t = { name = name, accept = {}, response = {}, system = {} }
	for _, m in ipairs(methods) do
		local id, group, method = m[1], m[2], m[3]
		t[group][method] = id
	end
	interfaces[name] = t
	return t
end

local send, call = skynet.send, skynet.call

-- obj.post / obj.req: a table that makes (and keeps) one sender per method.
local function senders(t, handle, group, verb, make)
	return setmetatable({}, {
		__index = function(cache, method)
			local id = t[group][method]
			if id == nil then
				error(string.format("%s %s:%s no exist", verb, t.name, tostring(method)), 2)
			end
			local f = make(handle, id)
			rawset(cache, method, f)
			return f
		end,
	})
end

local function poster(handle, id)
	return function(...)
		send(handle, "snax", id, ...)
	end
end

local function requester(handle, id)
	return function(...)
		return call(handle, "snax", id, ...)
	end
end

local object_meta = {
	__tostring = function(obj)
		return string.format("[%s:%x]", obj.type, obj.handle)
	end,
}

local objects = setmetatable({}, { __mode = "kv" })	-- handle -> object

function snax.bind(handle, type)
	local obj = objects[handle]
	if obj then
		if obj.type ~= type then
			error(string.format("snax.bind: %s is bound as %s, not %s", tostring(handle), obj.type, tostring(type)), 2)
		end
		return obj
	end
	local t = snax.interface(type)
	obj = setmetatable({
		post = senders(t, handle, "accept", "post", poster),
		req = senders(t, handle, "response", "request", requester),
		type = type,
		handle = handle,
	}, object_meta)
	objects[handle] = obj
	return obj
end

function snax.rawnewservice(name, ...)
	local t = snax.interface(name)
	local handle = skynet.newservice("snaxd", name)
	assert(objects[handle] == nil)
	call(handle, "snax", t.system.init, ...)
	return handle
end

function snax.newservice(name, ...)
	return snax.bind(snax.rawnewservice(name, ...), name)
end

local function from_service_mgr(name, command, ...)
	local handle = assert(call(".service", "lua", command, "snaxd", name, ...))
	return snax.bind(handle, name)
end

function snax.uniqueservice(name, ...)
	return from_service_mgr(name, "LAUNCH", ...)
end

function snax.globalservice(name, ...)
	return from_service_mgr(name, "GLAUNCH", ...)
end

function snax.queryservice(name)
	return from_service_mgr(name, "QUERY")
end

function snax.queryglobal(name)
	return from_service_mgr(name, "GQUERY")
end

function snax.kill(obj, ...)
	local t = snax.interface(obj.type)
	call(obj.handle, "snax", t.system.exit, ...)
end

function snax.self()
	return snax.bind(skynet.self(), SERVICE_NAME)
end

function snax.exit(...)
	snax.kill(snax.self(), ...)
end

local function patched(ok, ...)
	if not ok then
		error((...), 0)
	end
	return ...
end

function snax.hotfix(obj, source, ...)
	local t = snax.interface(obj.type)
	return patched(call(obj.handle, "snax", t.system.hotfix, source, ...))
end

function snax.printf(fmt, ...)
	skynet.error(string.format(fmt, ...))
end

function snax.profile_info(obj)
	local t = snax.interface(obj.type)
	return call(obj.handle, "snax", t.system.profile)
end

return snax
