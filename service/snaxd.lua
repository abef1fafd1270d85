-- snaxd <name>: runs the snax service file <name> (see snax.interface).
--
-- The file is found on the config `snax` path (or by the loader that the
-- file named by config `snax_loader` returns) and runs with this service's
-- globals. The folder "<pattern's folder>/<name>/" is put in front of
-- package.path; SERVICE_NAME is <name> and SERVICE_PATH that folder.
--
-- Messages on protocol `snax` (and `lua`, after snax.enablecluster()) are
-- pack(method_id, ...):
--   init(...)      once, before anything else but hotfix/profile; replied
--                  empty ("Already init" the second time)
--   exit(...)      runs exit(...), replies empty, then the service exits
--   hotfix(src, ...) patches the methods (snax.hotfix); replies its results
--   profile        replies { method = { count = calls, time = seconds } }
--                  (also the answer to the debug command INFO)
--   accept.<f>     runs f(...), no reply
--   response.<f>   replies pack(f(...))
-- An accept/response method before init fails with "Init first". An error in
-- a method is raised in this service (logged with its traceback), and a
-- caller waiting for a reply gets an error ("call failed").

local skynet = require "skynet"
local interface = require "snax.interface"
local profile = require "skynet.profile"
local snax = require "skynet.snax"

local snax_name = tostring(...)

local loader
do
	local loader_file = skynet.getenv "snax_loader"
	if loader_file then
		loader = assert(dofile(loader_file))
	end
end

local methods, pattern = interface(snax_name, _ENV, loader)

local service_path
do
	local q = string.find(pattern, "?", 1, true)
	if q then
		service_path = string.sub(pattern, 1, q - 1) .. snax_name .. "/"
	else
		service_path = string.match(pattern, "^(.*/)") or "./"
	end
end
package.path = service_path .. "?.lua;" .. package.path
SERVICE_NAME = snax_name
SERVICE_PATH = service_path

local stats = {}	-- method name -> { count, time }

local function count_call(name, seconds)
	local s = stats[name]
	if s == nil then
		s = { count = 0, time = 0 }
		stats[name] = s
	end
	s.count = s.count + 1
	s.time = s.time + seconds
end

local traceback = debug.traceback

local function reply_results(f, ...)
	return skynet.ret(skynet.pack(f(...)))
end

-- Runs an accept/response method, timed; its error is re-raised afterwards.
local function run_method(method, ...)
	local ok, err
	profile.start()
	if method[2] == "accept" then
		ok, err = xpcall(method[4], traceback, ...)
	else
		ok, err = xpcall(reply_results, traceback, method[4], ...)
	end
	count_call(method[3], profile.stop())
	if not ok then
		error(err, 0)
	end
end

local function nothing() end

skynet.start(function()
	local initialized = false

	local system = {}

	function system.init(method, ...)
		assert(not initialized, "Already init")
		local f = method[4] or nothing
		f(...)
		skynet.ret()
		skynet.info_func(function()
			return stats
		end)
		initialized = true
	end

	function system.exit(method, ...)
		assert(initialized, "Never init")
		local f = method[4] or nothing
		f(...)
		skynet.ret()
		initialized = false
		skynet.exit()
	end

	function system.hotfix(_, ...)
		local hotfix = require "snax.hotfix"
		skynet.ret(skynet.pack(hotfix(methods, ...)))
	end

	function system.profile()
		skynet.ret(skynet.pack(stats))
	end

	local function dispatch(_, _, id, ...)
		local method = methods[id]
		if method == nil then
			error(string.format("snax %s: no method with id %s", snax_name, tostring(id)))
		end
		if method[2] == "system" then
			return system[method[3]](method, ...)
		end
		assert(initialized, "Init first")
		return run_method(method, ...)
	end

	skynet.dispatch("snax", dispatch)

	function snax.enablecluster()
		skynet.dispatch("lua", dispatch)
	end
end)
