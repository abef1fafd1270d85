-- cmode_db: the serving node of the cluster-mode compose example
-- (deploy/docker-compose.cluster.yml). It runs a small key-value store,
-- registers it as the cluster name "sdb" and opens this node's cluster port
-- (node "db" in the cluster file).
--
--   lua SET(key, value) -> the previous value
--   lua GET(key)        -> the value
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local mode = ...

if mode == "store" then
	local data = {}
	local cmd = {}

	function cmd.SET(k, v)
		local old = data[k]
		data[k] = v
		return old
	end

	function cmd.GET(k)
		return data[k]
	end

	skynet.start(function()
		skynet.dispatch("lua", function(_, _, c, ...)
			local f = cmd[c]
			if not f then
				error("sdb: unknown command " .. tostring(c))
			end
			skynet.ret(skynet.pack(f(...)))
		end)
	end)
else
	skynet.start(function()
		local store = skynet.newservice("cmode_db", "store")
		cluster.register("sdb", store)
		cluster.open "db"
		skynet.error("cmode: db serves sdb")
	end)
end
