-- skynet.require: a `require` that may run inside skynet threads.
--
-- Loading a module happens in two steps:
--   1. its main chunk runs (and may itself block, e.g. call other services);
--   2. the functions it registered with skynet.init() run right after.
-- Modules required from the service's main chunk (the main thread) are loaded
-- by the plain require; their init functions wait in a list that
-- skynet.start runs (init_all) before the start function.
--
-- While a module is being loaded by one thread, other threads requiring it
-- wait for it; a thread requiring a module it is itself loading is a
-- circular dependency.

local M = {}

local main_thread, is_main = coroutine.running()
assert(is_main, "skynet.require must initialize in main thread")

local plain_require = _G.require
local loaded = package.loaded
local running = coroutine.running

-- thread -> list of init functions registered while that thread loads a module
local init_lists = { [main_thread] = {} }

local in_progress = {}	-- module name -> { co = loader thread, waiting threads... }

local function load_module(name, modfunc, filename, inits)
	local m = modfunc(name, filename)
	for _, f in ipairs(inits) do
		f()
	end
	if m == nil then
		m = true
	end
	loaded[name] = m
end

function M.require(name)
	local m = loaded[name]
	if m ~= nil then
		return m
	end
	local co, main = running()
	if main then
		return plain_require(name)
	end
	local filename = package.searchpath(name, package.path)
	if not filename then
		return plain_require(name)	-- C modules, preload, or the usual error
	end
	local modfunc = loadfile(filename)
	if not modfunc then
		return plain_require(name)
	end

	local queue = in_progress[name]
	if queue then
		assert(queue.co ~= co, "circular dependency")
		-- another thread is loading it: wait until it is done
		local skynet = plain_require "skynet"
		queue[#queue + 1] = co
		skynet.wait(co)
		m = loaded[name]
		if m == nil then
			error(string.format("require %s failed", name))
		end
		return m
	end

	queue = { co = co }
	in_progress[name] = queue
	local outer = init_lists[co]
	local inits = {}
	init_lists[co] = inits
	local ok, err = xpcall(load_module, debug.traceback, name, modfunc, filename, inits)
	init_lists[co] = outer
	if #queue > 0 then
		local skynet = plain_require "skynet"
		for i = 1, #queue do
			skynet.wakeup(queue[i])
		end
	end
	in_progress[name] = nil
	if not ok then
		error(err)
	end
	return loaded[name]
end

-- Runs the init functions registered from the main chunk (once).
function M.init_all()
	for _, f in ipairs(init_lists[main_thread]) do
		f()
	end
	init_lists[main_thread] = nil
end

function M.init(f)
	assert(type(f) == "function")
	table.insert(init_lists[running()], f)
end

return M
