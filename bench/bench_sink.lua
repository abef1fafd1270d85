-- Receiver for the benchmarks: counts one-way messages, answers calls.
local skynet = require "skynet"

local count = 0
local watcher

skynet.start(function()
	skynet.dispatch("lua", function(session, source, cmd, a)
		if cmd == "ping" then
			count = count + 1
			if count == watcher then
				watcher = nil
				skynet.send(source, "lua", "done")
			end
		elseif cmd == "call" then
			skynet.ret(skynet.pack(a))
		elseif cmd == "expect" then
			count = 0
			watcher = a
			skynet.ret()
		end
	end)
end)
