-- skynet.memlimit: the limit is logged when the service starts, an
-- allocation past it fails with "not enough memory", and the service goes on.
-- Lines start with "t_memlimit:"; the last one is "t_memlimit: done".
local skynet = require "skynet"
require "skynet.manager"

skynet.memlimit(2 * 1024 * 1024)
local second = pcall(skynet.memlimit, 1)	-- only once: the function is gone

local function log(...)
	skynet.error("t_memlimit:", ...)
end

skynet.start(function()
	log("memlimit twice", second)
	local hold = {}
	local ok, err = pcall(function()
		for i = 1, 1000000 do
			hold[i] = string.rep("m", 64) .. i
		end
	end)
	log("big allocation", ok, err)
	hold = nil
	collectgarbage "collect"
	-- small allocations work again
	local t = {}
	for i = 1, 100 do
		t[i] = tostring(i)
	end
	log("after", #t, table.concat(t, "", 1, 3))
	ok, err = pcall(string.rep, "x", 4 * 1024 * 1024)
	log("big string", ok, err)
	log "done"
	skynet.abort()
end)
