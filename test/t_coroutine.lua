-- skynet.coroutine: user coroutines that may block inside skynet.
-- Lines start with "t_coroutine:"; the last one is "t_coroutine: done".
local skynet = require "skynet"
local co = require "skynet.coroutine"
require "skynet.manager"

local function log(...)
	skynet.error("t_coroutine:", ...)
end

skynet.start(function()
	local main = coroutine.running()
	local c = co.create(function(a)
		log("inside, thread is main", co.thread() == main, select(2, co.thread()))
		local b = co.yield(a + 1)
		skynet.sleep(5)	-- a skynet block: not seen by our resume
		local c2 = co.yield(b * 2)
		return "end", c2
	end)
	log("status new", co.status(c))
	log("resume 1", co.resume(c, 1))
	log("status", co.status(c), "thread of c", co.thread(c) == main, select(2, co.thread(c)))

	local seen = {}
	skynet.fork(function()
		skynet.sleep(2)
		seen.status = co.status(c)
		seen.resume = table.pack(co.resume(c))
	end)
	log("resume 2", co.resume(c, 10))
	log("while sleeping", seen.status, seen.resume[1], seen.resume[2])
	log("resume 3", co.resume(c, "last"))
	log("status end", co.status(c))
	log("resume dead", co.resume(c))

	-- wrap
	local gen = co.wrap(function()
		for i = 1, 3 do
			skynet.yield()
			co.yield(i)
		end
	end)
	log("wrap", gen(), gen(), gen())

	-- an error inside a user coroutine
	local bad = co.create(function()
		skynet.sleep(1)
		error "user coroutine fails"
	end)
	local ok, err = co.resume(bad)
	log("error", ok, tostring(err):match("user coroutine fails") ~= nil, co.status(bad))

	log("plain coroutine", co.resume(coroutine.create(print)))
	log "done"
	skynet.abort()
end)
