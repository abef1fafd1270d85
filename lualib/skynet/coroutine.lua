-- skynet.coroutine: coroutines that may call blocking skynet APIs.
--
-- Use this module instead of the standard `coroutine` library inside a
-- skynet service.  A thread created here can call skynet.call, sleep, etc.:
-- such a yield is not for the user's resume; it is passed up to the skynet
-- thread that (transitively) resumed it, and the answer is passed back down.
-- User yields (skynetco.yield) are tagged "USER" so both kinds can be told
-- apart.

local coroutine = coroutine
local raw_resume = coroutine.resume	-- the profiling resume installed by snlua
local raw_yield = coroutine.yield
local raw_status = coroutine.status
local raw_running = coroutine.running
local raw_close = coroutine.close
local select = select

local skynetco = {}

skynetco.isyieldable = coroutine.isyieldable
skynetco.running = coroutine.running

-- thread -> true (ours, usable), false (blocked inside the framework)
-- A dead or foreign thread has no entry.
local managed = setmetatable({}, { __mode = "kv" })

-- thread -> the skynet thread at the root of its chain of resumers
local root_of = setmetatable({}, { __mode = "kv" })

function skynetco.create(f)
	local co = coroutine.create(f)
	managed[co] = true
	return co
end

local function unblock(co, ...)
	managed[co] = true
	return ...
end

-- Called when `co` yielded a framework request (...): hand it to our own
-- resumer, then give the answer back to `co`.
local function forward_up(co, ...)
	managed[co] = false
	return unblock(co, raw_resume(co, raw_yield(...)))
end

local function settle(co, ok, ...)
	if not ok then
		return false, ...
	end
	if raw_status(co) == "dead" then
		managed[co] = nil
		return true, ...
	end
	if (...) == "USER" then
		return true, select(2, ...)
	end
	return settle(co, forward_up(co, ...))
end

function skynetco.resume(co, ...)
	local state = managed[co]
	if not state then
		if state == false then
			return false, "cannot resume a skynet coroutine suspend by skynet framework"
		end
		if raw_status(co) == "dead" then
			return raw_resume(co, ...)	-- the usual "cannot resume dead coroutine"
		end
		return false, "cannot resume none skynet coroutine"
	end
	local from = raw_running()
	root_of[co] = root_of[from] or from
	return settle(co, raw_resume(co, ...))
end

-- Returns the skynet thread behind `co` (default: the running one) and
-- whether `co` itself is that skynet thread.
function skynetco.thread(co)
	co = co or raw_running()
	if managed[co] ~= nil then
		return root_of[co], false
	end
	return co, true
end

function skynetco.status(co)
	local status = raw_status(co)
	if status == "suspended" and managed[co] == false then
		return "blocked"
	end
	return status
end

function skynetco.yield(...)
	return raw_yield("USER", ...)
end

local function unwrap(ok, ...)
	if ok then
		return ...
	end
	error(...)
end

function skynetco.wrap(f)
	local co = skynetco.create(function(...)
		return f(...)
	end)
	return function(...)
		return unwrap(skynetco.resume(co, ...))
	end
end

function skynetco.close(co)
	managed[co] = nil
	return raw_close(co)
end

return skynetco
