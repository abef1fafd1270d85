-- Runs on C skynet (not on our node): a cluster node for
-- t_cluster_c, which sends it packets made by our skynet.cluster.core.
-- Listens on 127.0.0.1 at a port the system picks, registers an echo
-- service as "@echo" and prints "c_cluster_main: port <n>".
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
	local echo = skynet.newservice("c_cluster_echo")
	cluster.register("echo", echo)
	local clusterd = skynet.uniqueservice("clusterd")
	local _, port = skynet.call(clusterd, "lua", "listen", "127.0.0.1", 0)
	skynet.error("c_cluster_main: port " .. port)
end)
