-- Helper of t_snax: a plain service that finds snax_counter through
-- service_mgr, binds the handle it is given, and adds to the counter.
local skynet = require "skynet"
local snax = require "skynet.snax"

skynet.start(function()
	skynet.dispatch("lua", function(_, _, handle)
		local found = snax.queryservice "snax_counter"
		local bound = snax.bind(handle, "snax_counter")
		assert(rawequal(found, bound))
		bound.post.add(1)
		skynet.retpack(found.handle)
	end)
end)
