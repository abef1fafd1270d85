-- Cluster-mode benchmark, node "sink" (harbor 0): itself the service
-- registered as "sink" on port bench_cmode_port. It answers "call" with its
-- argument, counts "ping" pushes, and answers "count" (pushes so far), which
-- arrives after every push sent before it (cluster sends keep their order).
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local count = 0

skynet.start(function()
	skynet.dispatch("lua", function(session, _, cmd, a)
		if cmd == "ping" then
			count = count + 1
		elseif cmd == "call" then
			skynet.ret(skynet.pack(a))
		elseif cmd == "count" then
			local n = count
			count = 0
			skynet.ret(skynet.pack(n))
		end
	end)
	cluster.register("sink")
	cluster.open(tonumber(skynet.getenv "bench_cmode_port"))
	skynet.error("bench_cmode_sink: ready")
end)
