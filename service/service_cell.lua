-- service_cell: the host of a skynet.service function service.
--
-- It waits for one lua request `init(code, ...)` from service_provider, where
-- `code` is the string.dump of the service's main function. The function is
-- run like a service main chunk with `...` as arguments; a skynet.start it
-- calls is captured and its start function run right after, still inside the
-- init request. The request is answered once all of that succeeded.

local skynet = require "skynet"

local name = ...

local handlers = {}

function handlers.init(code, ...)
	local start_func
	skynet.start = function(f)
		start_func = f
	end
	-- until the function installs its own dispatcher
	skynet.dispatch("lua", function()
		error("No dispatch function")
	end)
	local main = assert(load(code, name))
	assert(skynet.pcall(main, ...))
	if start_func then
		start_func()
	end
	skynet.ret()
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		handlers[cmd](...)
	end)
end)
