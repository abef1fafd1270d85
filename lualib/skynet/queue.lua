-- skynet.queue: a per-service critical section.
--
--   local cs = require "skynet.queue" ()
--   cs(f, ...)          -- runs f(...) with exclusive ownership of `cs`
--
-- Only one coroutine owns the section at a time. The owner may enter again
-- (nested calls from the same coroutine do not block). Other coroutines are
-- parked in FIFO order and handed the section when the owner's outermost
-- call finishes. The results of f are returned; an error raised by f is
-- re-raised (as its traceback text) after ownership has been released.

local skynet = require "skynet"

local running = coroutine.running
local xpcall = xpcall
local traceback = debug.traceback
local tinsert = table.insert
local tremove = table.remove

function skynet.queue()
	local owner		-- coroutine holding the section, or nil
	local depth = 0		-- nesting level of the owner
	local waiting = {}	-- parked coroutines, FIFO

	-- Called with the xpcall results once f has finished.
	local function leave(ok, ...)
		depth = depth - 1
		if depth == 0 then
			-- hand over to the next waiter (nil when nobody waits)
			owner = tremove(waiting, 1)
			if owner then
				skynet.wakeup(owner)
			end
		end
		if not ok then
			error((...), 0)
		end
		return ...
	end

	return function(f, ...)
		local co = running()
		if owner ~= nil and owner ~= co then
			tinsert(waiting, co)
			skynet.wait()
			-- the previous owner chose us before waking us up
			assert(depth == 0)
		end
		owner = co
		depth = depth + 1
		return leave(xpcall(f, traceback, ...))
	end
end

return skynet.queue
