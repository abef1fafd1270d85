-- cluster_client: the example for a multi-node cluster (deploy/docker-compose.yml).
-- The start service of harbors 2 and 3: finds the global name ROOM (served by
-- examples/cluster_room.lua on harbor 1), joins, then every few seconds sends
-- a chat line and calls `stats`, logging each round trip. A lost room is
-- logged and retried, so nodes can be stopped and started in any order.
--
-- Config key `client_period` (seconds, default 3).
local skynet = require "skynet"
local harbor = require "skynet.harbor"

local function log(fmt, ...)
	skynet.error(string.format(fmt, ...))
end

skynet.start(function()
	local me = skynet.harbor(skynet.self())
	local who = "node" .. me
	local period = math.tointeger(tonumber(skynet.getenv "client_period" or "") or 3) or 3
	log("client %s: looking up global name ROOM ...", who)
	local room = harbor.queryname "ROOM"	-- waits until some harbor registers it
	log("client %s: ROOM is %s on harbor %d", who, skynet.address(room), skynet.harbor(room))
	local joined = false
	local round = 0
	while true do
		round = round + 1
		local t0 = skynet.hpc()
		if not joined then
			local ok, n = pcall(skynet.call, "ROOM", "lua", "join", who)
			if ok then
				joined = true
				log("client %s: joined ROOM, %d members (%.2f ms)", who, n, (skynet.hpc() - t0) / 1e6)
			else
				log("client %s: join failed: %s", who, n)
			end
		else
			skynet.send("ROOM", "lua", "say", who, string.format("hello #%d from harbor %d", round, me))
			local ok, members, messages = pcall(skynet.call, "ROOM", "lua", "stats")
			if ok then
				log("client %s: call ROOM.stats -> %d members, %d messages (%.2f ms round trip to harbor %d)",
					who, members, messages, (skynet.hpc() - t0) / 1e6, skynet.harbor(harbor.queryname "ROOM"))
			else
				log("client %s: call ROOM.stats failed: %s (will join again)", who, members)
				joined = false
			end
		end
		skynet.sleep(period * 100)
	end
end)
