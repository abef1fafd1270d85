-- multicastd: the multicast hub of one node (started by skynet.multicast with
-- uniqueservice, registered in the datacenter under ("multicast", harbor id)).
--
-- A channel is owned by the node that made it: the low byte of its id is that
-- node's harbor id. The owner knows every node subscribing to it; each node
-- knows its own subscribers. A publish goes to the owner, which delivers it to
-- its local subscribers and sends one copy to each subscribing node, whose
-- multicastd delivers it to its own. Locally the payload is never copied:
-- every subscriber gets an 8-byte message naming one refcounted package.
--
-- lua commands (the same as skynet's multicastd, so nodes running either can
-- share channels):
--   NEW()           -> a new channel id owned by this node
--   DEL(c)          deletes c (sent on to its owner, which tells the
--                   subscribing nodes DELR)
--   PUB(c, holder, sz) -> true | false, reason   (holder from mc.pack)
--   SUB(c)          -> true | false, reason     (the caller subscribes)
--   USUB(c)         the caller unsubscribes
--   SUBR(c)         (node -> owner) the calling node subscribes; answers true
--                   when there is no such channel
--   USUBR(c)        (node -> owner) the calling node has no subscriber left
--   DELR(c)         (owner -> node) c was deleted
-- PTYPE_MULTICAST messages (session = channel, source = publisher) carry a
-- publish between nodes: to the owner, and from the owner to each node.

local skynet = require "skynet"
local core = require "skynet.core"
local mc = require "skynet.multicast.core"
local datacenter = require "skynet.datacenter"

local PTYPE_MULTICAST = skynet.PTYPE_MULTICAST
local redirect = core.redirect
local tostring_msg = skynet.tostring

local harbor_id = skynet.harbor(skynet.self())
local NORET = {}

local groups = {}	-- channel -> { [subscriber] = true }: local subscribers
local counts = {}	-- channel -> number of local subscribers
-- On the owner a channel exists while groups[c] does; on another node
-- groups[c] lives while the node has subscribers of c.
local nodes = {}	-- channel owned here -> { [harbor] = true }: subscribing nodes
local leaves = {}	-- channel -> USUBR messages sent (see command.SUB)
local next_id = harbor_id

local hubs = {}	-- harbor -> its multicastd
local function hub(harbor)
	local addr = hubs[harbor]
	if addr == nil then
		addr = datacenter.get("multicast", harbor)
		if addr == nil then
			error(string.format("multicast: harbor %d has no multicastd", harbor))
		end
		hubs[harbor] = addr
	end
	return addr
end

local function owner(c)
	return c % 256
end

-- A package nobody will get: bind it to one reference and drop that.
local function discard(holder)
	mc.close(mc.bind(holder, 1))
end

local function remove_subscriber(c, sub)
	local group = groups[c]
	if group == nil or not group[sub] then
		return
	end
	group[sub] = nil
	local n = counts[c] - 1
	counts[c] = n
	if n == 0 and owner(c) ~= harbor_id then
		-- the last local subscriber of a remote channel: stop its copies
		groups[c] = nil
		counts[c] = nil
		leaves[c] = (leaves[c] or 0) + 1
		local ok, addr = pcall(hub, owner(c))
		if ok then
			skynet.send(addr, "lua", "USUBR", c)
		end
	end
end

-- Delivers a package to the subscribing nodes and the local subscribers.
local function publish(c, source, holder, sz)
	local remote = nodes[c]
	if remote then
		local _, data, size = mc.unpack(holder, sz)
		local msg = tostring_msg(data, size)
		for node in pairs(remote) do
			redirect(hubs[node] or hub(node), source, PTYPE_MULTICAST, c, msg)
		end
	end
	local n = counts[c]
	if n == nil or n == 0 then
		discard(holder)
		return
	end
	local delivery = tostring_msg(holder, sz)
	mc.bind(holder, n)
	local gone
	for sub in pairs(groups[c]) do
		if not redirect(sub, source, PTYPE_MULTICAST, c, delivery) then
			-- exited without unsubscribing; the kernel gave its reference back
			gone = gone or {}
			gone[#gone + 1] = sub
		end
	end
	if gone then
		for _, sub in ipairs(gone) do
			remove_subscriber(c, sub)
		end
	end
end

local command = {}

function command.NEW()
	while next_id == 0 or groups[next_id] do
		next_id = mc.nextid(next_id)
	end
	local c = next_id
	groups[c] = {}
	counts[c] = 0
	next_id = mc.nextid(next_id)
	return c
end

function command.DEL(_, c)
	if owner(c) ~= harbor_id then
		skynet.send(hub(owner(c)), "lua", "DEL", c)
		return NORET
	end
	local remote = nodes[c]
	groups[c] = nil
	counts[c] = nil
	nodes[c] = nil
	if remote then
		for node in pairs(remote) do
			skynet.send(hubs[node] or hub(node), "lua", "DELR", c)
		end
	end
	return NORET
end

function command.DELR(_, c)
	groups[c] = nil
	counts[c] = nil
	return NORET
end

function command.PUB(source, c, holder, sz)
	if owner(c) ~= harbor_id then
		local ok, addr = pcall(hub, owner(c))
		if not ok then
			discard(holder)
			return false, addr
		end
		redirect(addr, source, PTYPE_MULTICAST, c, mc.remote(holder, sz))
		return true
	end
	if groups[c] == nil then
		discard(holder)
		return false, string.format("multicast: channel %x does not exist (deleted?)", c)
	end
	publish(c, source, holder, sz)
	return true
end

function command.SUB(source, c)
	if groups[c] == nil then
		if owner(c) == harbor_id then
			return false, string.format("multicast: channel %x does not exist (deleted?)", c)
		end
		local ok, addr = pcall(hub, owner(c))
		if not ok then
			return false, addr
		end
		-- An USUBR sent while SUBR was on its way cancels it: ask again.
		repeat
			local left = leaves[c]
			if skynet.call(addr, "lua", "SUBR", c) then
				return false, string.format("multicast: channel %x does not exist (deleted?)", c)
			end
		until leaves[c] == left
		if groups[c] == nil then
			groups[c] = {}
			counts[c] = 0
		end
	end
	local group = groups[c]
	if not group[source] then
		group[source] = true
		counts[c] = counts[c] + 1
	end
	return true
end

function command.SUBR(source, c)
	local node = skynet.harbor(source)
	if groups[c] == nil or owner(c) ~= harbor_id or node == harbor_id then
		return true
	end
	hubs[node] = source
	local remote = nodes[c]
	if remote == nil then
		remote = {}
		nodes[c] = remote
	end
	remote[node] = true
end

function command.USUB(source, c)
	remove_subscriber(c, source)
	return NORET
end

function command.USUBR(source, c)
	local remote = nodes[c]
	if remote then
		remote[skynet.harbor(source)] = nil
		if next(remote) == nil then
			nodes[c] = nil
		end
	end
	return NORET
end

-- A publish from another node: from a publisher's node to the owner, or
-- from the owner to a subscribing node.
skynet.register_protocol {
	name = "multicast",
	id = PTYPE_MULTICAST,
	unpack = mc.packremote,
	dispatch = function(c, source, holder, sz)
		skynet.ignoreret()
		if groups[c] == nil then
			discard(holder)
			if owner(c) == harbor_id then
				skynet.error(string.format("multicast: publish from %s to channel %x dropped: no such channel",
					skynet.address(source), c))
			end
			return
		end
		publish(c, source, holder, sz)
	end,
}

skynet.start(function()
	skynet.dispatch("lua", function(_, source, cmd, ...)
		local f = command[cmd]
		if f == nil then
			error(string.format("multicastd: unknown command %s from %s", tostring(cmd), skynet.address(source)))
		end
		local r, err = f(source, ...)
		if r ~= NORET then
			skynet.ret(skynet.pack(r, err))
		end
	end)
	local old = datacenter.set("multicast", harbor_id, skynet.self())
	if old ~= nil then
		skynet.error(string.format("multicastd replaces %s for harbor %d", skynet.address(old), harbor_id))
	end
end)
