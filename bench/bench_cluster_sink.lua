-- Cluster benchmark, harbor 1: a sink registered as the global name BENCHSINK.
local skynet = require "skynet"
require "skynet.manager"

skynet.start(function()
	skynet.newservice("bench_sink")
	local sink = skynet.newservice("bench_sink")
	skynet.name("BENCHSINK", sink)
	skynet.error("bench_cluster_sink: ready")
end)
