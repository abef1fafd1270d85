-- Runs on C skynet: answers "echo" and what it was sent; counts pushes;
-- "fail" raises.
local skynet = require "skynet"

local pushes = {}

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		if cmd == "push" then
			pushes[#pushes + 1] = #tostring((...))
		elseif cmd == "pushes" then
			skynet.ret(skynet.pack(table.concat(pushes, ",")))
		elseif cmd == "fail" then
			error("asked to fail")
		else
			skynet.ret(skynet.pack("echo", cmd, ...))
		end
	end)
end)
