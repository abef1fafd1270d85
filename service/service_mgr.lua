-- service_mgr (`.service`): one instance per service name, backing
-- skynet.uniqueservice / skynet.queryservice.
--
-- lua commands (replies are pack(result) or pack(nil, errmsg)):
--   LAUNCH(name, ...)    start `name` once; concurrent callers wait for it.
--                        "snaxd" launches snax service `...` under "snaxd.<sub>"
--   QUERY(name[, sub])   wait until `name` has been launched by someone
--   GLAUNCH / GQUERY     the same for network-wide services (key "@name",
--                        "@snaxd.<sub>" for snax); on a node that is not
--                        standalone they are forwarded to the global SERVICE
--                        (the service_mgr of the master); a GQUERY waits
--                        there, so a GLAUNCH from the same node gets through
--   LIST                 { name = ":%08x" | "Querying" | "Error: ..." }
--                        (the master also merges the lists of every node that
--                        sent REPORT, with keys suffixed "@<harbor>")
--   REPORT(mgr)          (master only) a node's service_mgr announces itself
-- A failed launch is remembered: later requests for that name fail as well.

local skynet = require "skynet"
require "skynet.manager"	-- skynet.register

local cmd = {}

-- name -> handle (number) once launched,
--         error text (string) if the launch failed,
--         { launch = true?, co1, co2, ... } while being launched / waited for
local registry = {}

local function snax_rawnewservice(...)
	local snax = require "skynet.snax"
	return snax.rawnewservice(...)
end

-- Runs the launcher `func(...)` for `name` and wakes everyone waiting.
local function start_service(name, func, ...)
	local ok, result = pcall(func, ...)
	local waiting = registry[name]
	assert(type(waiting) == "table")
	if ok then
		registry[name] = result
	else
		registry[name] = tostring(result)
	end
	for _, co in ipairs(waiting) do
		skynet.wakeup(co)
	end
	if not ok then
		error(tostring(result))
	end
	return result
end

-- Returns the handle of `name`. When `func` is given and nobody is launching
-- it yet, this caller launches it; otherwise it waits for the outcome.
local function waitfor(name, func, ...)
	local entry = registry[name]
	if type(entry) == "number" then
		return entry
	end
	if entry == nil then
		entry = {}
		registry[name] = entry
	elseif type(entry) == "string" then
		error(entry)
	end
	assert(type(entry) == "table")

	if func and not entry.launch then
		entry.launch = true
		return start_service(name, func, ...)
	end

	entry[#entry + 1] = coroutine.running()
	skynet.wait()
	entry = registry[name]
	if type(entry) == "string" then
		error(entry)
	end
	assert(type(entry) == "number")
	return entry
end

-- Strips the leading '@' of a global service key.
local function real_name(service_name)
	if string.byte(service_name) == 64 then	-- '@'
		return string.sub(service_name, 2)
	end
	return service_name
end

function cmd.LAUNCH(service_name, subname, ...)
	if real_name(service_name) == "snaxd" then
		return waitfor(service_name .. "." .. subname, snax_rawnewservice, subname, ...)
	end
	return waitfor(service_name, skynet.newservice, real_name(service_name), subname, ...)
end

function cmd.QUERY(service_name, subname)
	if real_name(service_name) == "snaxd" then
		return waitfor(service_name .. "." .. subname)
	end
	return waitfor(service_name)
end

local function local_list()
	local list = {}
	for name, entry in pairs(registry) do
		local t = type(entry)
		if t == "string" then
			list[name] = "Error: " .. entry
		elseif t == "table" then
			list[name] = "Querying"
		else
			list[name] = skynet.address(entry)
		end
	end
	return list
end

-- Standalone / master node: global services are kept here.
local function keep_global_services()
	local nodes = {}	-- service_mgr handles of the other nodes

	function cmd.GLAUNCH(name, ...)
		return cmd.LAUNCH("@" .. name, ...)
	end

	function cmd.GQUERY(name, ...)
		return cmd.QUERY("@" .. name, ...)
	end

	function cmd.REPORT(mgr)
		nodes[mgr] = true
	end

	local function merge_remote(all, mgr)
		local suffix = "@" .. skynet.harbor(mgr)
		local remote = skynet.call(mgr, "lua", "LIST")
		for name, desc in pairs(remote) do
			all[name .. suffix] = desc
		end
	end

	function cmd.LIST()
		local all = {}
		for mgr in pairs(nodes) do
			pcall(merge_remote, all, mgr)
		end
		for name, desc in pairs(local_list()) do
			all[name] = desc
		end
		return all
	end
end

-- Other nodes: global requests go to SERVICE on the master; the handles it
-- gives are cached locally under the same key.
local function forward_global_services()
	local function global_key(name, ...)
		if name == "snaxd" then
			return "@snaxd." .. (...)
		end
		return "@" .. name
	end

	-- SERVICE replies pack(handle) or pack(nil, error): raise the error.
	local function ask_master(command, global_name, ...)
		local handle, err = skynet.call("SERVICE", "lua", command, global_name, ...)
		if handle == nil then
			error(err or string.format("SERVICE %s %s: no handle", command, global_name), 0)
		end
		return handle
	end

	function cmd.GLAUNCH(name, ...)
		return waitfor(global_key(name, ...), ask_master, "LAUNCH", "@" .. name, ...)
	end

	-- A query waits at SERVICE, not in the local registry, so that a launch
	-- this node asks for while the query waits still reaches the master.
	function cmd.GQUERY(name, ...)
		local key = global_key(name, ...)
		local entry = registry[key]
		if type(entry) == "number" then
			return entry
		elseif type(entry) == "string" then
			error(entry, 0)
		end
		local handle = ask_master("QUERY", "@" .. name, ...)
		if registry[key] == nil then
			registry[key] = handle
		end
		return handle
	end

	function cmd.LIST()
		return local_list()
	end

	skynet.call("SERVICE", "lua", "REPORT", skynet.self())
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, command, ...)
		local f = cmd[command]
		if f == nil then
			skynet.ret(skynet.pack(nil, "Invalid command " .. command))
			return
		end
		local ok, result = pcall(f, ...)
		if ok then
			skynet.ret(skynet.pack(result))
		else
			skynet.ret(skynet.pack(nil, result))
		end
	end)

	local existing = skynet.localname ".service"
	if existing then
		skynet.error(".service is already register by ", skynet.address(existing))
		skynet.exit()
	else
		skynet.register ".service"
	end

	if skynet.getenv "standalone" then
		skynet.register "SERVICE"
		keep_global_services()
	else
		forward_global_services()
	end
end)
