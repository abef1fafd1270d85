-- skynet.service: new / query / close of function services.
-- Lines start with "t_service:"; the last one is "t_service: done".
local skynet = require "skynet"
local service = require "skynet.service"
require "skynet.manager"

local function log(...)
	skynet.error("t_service:", ...)
end

-- the service body: only _ENV as upvalue
local function counter(start)
	local skynet = require "skynet"
	local n = tonumber(start)
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "inc" then
				n = n + 1
			end
			skynet.retpack(n)
		end)
	end)
end

skynet.start(function()
	-- a query before the service exists waits for it
	local queried
	skynet.fork(function()
		queried = service.query "counter"
	end)
	local a = service.new("counter", counter, 10)
	local b
	skynet.fork(function()
		b = service.new("counter", counter, 99)	-- same name: the same service
	end)
	skynet.sleep(5)
	log("same address", a == b, "query", queried == a)
	log("calls", skynet.call(a, "lua", "inc"), skynet.call(b, "lua", "inc"), skynet.call(a, "lua", "get"))

	local ok = pcall(service.new, "bad", function() return skynet end)	-- an upvalue besides _ENV
	log("function with upvalues", ok)

	local ok2, err = pcall(service.new, "throws", function()
		error "service body fails"
	end)
	log("body error", ok2)

	log("close", service.close "counter", service.close "never_made")
	log "done"
	skynet.abort()
end)
