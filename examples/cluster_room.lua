-- cluster_room: the example for a multi-node cluster (deploy/docker-compose.yml).
-- The start service of harbor 1: a chat room registered as the global name
-- ROOM. Clients on other harbors (examples/cluster_client.lua) call and send
-- to it by that name; every line it logs shows which harbor the message came
-- from, so the cross-node traffic is visible in `docker-compose logs`.
--
-- lua commands:
--   join(who)        call: returns the number of members and messages so far
--   say(who, text)   send: a chat line, counted and logged
--   stats()          call: members, messages
local skynet = require "skynet"
require "skynet.manager"	-- skynet.register

local members = {}	-- who -> harbor id it joined from
local nmembers = 0
local messages = 0
local command = {}

local function from(source)
	return string.format("harbor %d (%s)", skynet.harbor(source), skynet.address(source))
end

function command.join(source, who)
	if not members[who] then
		nmembers = nmembers + 1
	end
	members[who] = skynet.harbor(source)
	skynet.error(string.format("ROOM: %s joined from %s; %d members", who, from(source), nmembers))
	return nmembers, messages
end

function command.say(source, who, text)
	messages = messages + 1
	skynet.error(string.format("ROOM: #%d <%s@%s> %s", messages, who, from(source), text))
end

function command.stats()
	return nmembers, messages
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, cmd, ...)
		local f = assert(command[cmd], cmd)
		if session == 0 then
			f(source, ...)
		else
			skynet.retpack(f(source, ...))
		end
	end)
	-- A name without a leading dot is global: the master tells every harbor.
	skynet.register "ROOM"
	skynet.error(string.format("ROOM: chat room %s registered as global name ROOM on harbor %d",
		skynet.address(skynet.self()), skynet.harbor(skynet.self())))
end)
