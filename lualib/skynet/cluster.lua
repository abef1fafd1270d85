-- skynet.cluster: calls and sends to services on other skynet nodes over TCP
-- (cluster mode, no master needed), through the unique service clusterd.
--
--   cluster.open(port | nodename [, maxclient]) -> address, port
--   cluster.reload([cfg])              cfg: node -> "host:port" | false
--   cluster.call(node, addr, ...)      addr: a number or "@name"
--   cluster.send(node, addr, ...)
--   cluster.query(node, name) -> address of a name registered there
--   cluster.register(name [, addr]), cluster.unregister(name)
--   cluster.proxy(node [, name]) -> a local address forwarding to it
--   cluster.snax(node, name [, addr]) -> a snax object
--   cluster.get_sender(node) -> the node's clustersender
--   cluster.status() -> node -> { connected, pending, last_error, address }
--
-- A failed call raises an error naming the node and the reason (down,
-- absent, timeout, closed, moved, or the remote error), where skynet raises
-- "call failed". Sends to a node keep their order whatever their size.

local skynet = require "skynet"

local format = string.format

local clusterd
local cluster = {}
local sender = {}	-- node -> its clustersender, once known
local resolving = {}	-- node -> { sends queued meanwhile, waiting callers }
local token = 0	-- names a call, to ask the sender why it failed

-- Asks clusterd for the sender of `node` (record `r`), then pushes the
-- sends queued meanwhile, in order, and wakes the callers that waited.
local function run_resolve(node, r)
	local ok, s, err = pcall(skynet.call, clusterd, "lua", "getsender", node)
	if not ok then
		s, err = nil, format("cluster node [%s]: clusterd failed: %s", node, tostring(s))
	end
	if s then
		for _, packed in ipairs(r.sends) do
			skynet.send(s, "lua", "push", skynet.unpack(packed))
		end
	elseif #r.sends > 0 then
		skynet.error(format("cluster.send: %d message(s) to node %s dropped: %s", #r.sends, node, err))
	end
	sender[node] = s
	resolving[node] = nil
	r.err = err
	for _, co in ipairs(r.waiting) do
		skynet.wakeup(co)
	end
end

local function start_resolve(node)
	local r = { sends = {}, waiting = {} }
	resolving[node] = r
	skynet.fork(run_resolve, node, r)
	return r
end

local function resolve(node)
	local r = resolving[node] or start_resolve(node)
	local co = coroutine.running()
	r.waiting[#r.waiting + 1] = co
	skynet.wait(co)
	return sender[node], r.err
end

local function get_sender(node)
	local s = sender[node]
	if s then
		return s
	end
	local err
	s, err = resolve(node)
	if not s then
		error(err, 3)
	end
	return s
end

cluster.get_sender = function(node)
	return get_sender(node)
end

local function request(node, s, address, msg, sz)
	token = token + 1
	local t = token
	local ok, rmsg, rsz = pcall(skynet.rawcall, s, "lua", skynet.pack("req", address, msg, sz, t))
	if ok then
		return rmsg, rsz
	end
	local got, reason = pcall(skynet.call, s, "lua", "error", t)
	if not (got and reason) then
		reason = format("cluster node [%s]: call failed", node)
	end
	error(reason, 3)
end

function cluster.call(node, address, ...)
	local s = sender[node] or get_sender(node)
	return skynet.unpack(request(node, s, address, skynet.pack(...)))
end

function cluster.send(node, address, ...)
	local s = sender[node]
	if s then
		skynet.send(s, "lua", "push", address, skynet.pack(...))
		return
	end
	local r = resolving[node] or start_resolve(node)
	r.sends[#r.sends + 1] = skynet.packstring(address, skynet.packstring(...))
end

function cluster.open(port, maxclient)
	if type(port) == "string" then
		return skynet.call(clusterd, "lua", "listen", port, nil, maxclient)
	else
		return skynet.call(clusterd, "lua", "listen", "0.0.0.0", port, maxclient)
	end
end

function cluster.reload(config)
	skynet.call(clusterd, "lua", "reload", config)
end

function cluster.proxy(node, name)
	return skynet.call(clusterd, "lua", "proxy", node, name)
end

function cluster.snax(node, name, address)
	local snax = require "skynet.snax"
	if not address then
		address = cluster.call(node, ".service", "QUERY", "snaxd", name)
	end
	local handle = skynet.call(clusterd, "lua", "proxy", node, address)
	return snax.bind(handle, name)
end

function cluster.register(name, addr)
	assert(type(name) == "string", "cluster.register: name must be a string")
	assert(addr == nil or type(addr) == "number", "cluster.register: addr must be a number")
	return skynet.call(clusterd, "lua", "register", name, addr)
end

function cluster.unregister(name)
	assert(type(name) == "string", "cluster.unregister: name must be a string")
	return skynet.call(clusterd, "lua", "unregister", name)
end

function cluster.query(node, name)
	local s = sender[node] or get_sender(node)
	return skynet.unpack(request(node, s, 0, skynet.pack(name)))
end

function cluster.status()
	return skynet.call(clusterd, "lua", "status")
end

skynet.init(function()
	clusterd = skynet.uniqueservice("clusterd")
end)

return cluster
