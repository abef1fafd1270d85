-- clusterd: the unique service of cluster mode. It owns the cluster config
-- (config key `cluster`: a Lua file returning node = "host:port" or false;
-- keys starting with "__" are options, `__nowaiting`), one clustersender per
-- node, the clusterproxy services, the names registered for other nodes, the
-- listening gates and a clusteragent per incoming connection.
--
-- lua commands (skynet's): reload(cfg), listen(addr, port, maxclient) (port
-- nil: addr is a node name), sender(node) (raises if there is none),
-- senders(), proxy(node, name), register(name[, addr]), unregister(name),
-- queryname(name), socket(event, fd, ...) (the gates' watchdog events).
-- Ours: getsender(node) -> sender | nil, reason; status() -> node ->
-- { connected, pending, last_error, address }; the same table (with the
-- registered names) answers the debug command INFO.
--
-- A node missing from the config is waited for (a reload may add it) at most
-- cluster_timeout seconds, or not at all with __nowaiting; a node mapped to
-- false gets a sender that fails every call at once.

local skynet = require "skynet"
require "skynet.manager"
local cluster = require "skynet.cluster.core"

local format = string.format

local config_name = skynet.getenv "cluster"
local TIMEOUT = tonumber(skynet.getenv "cluster_timeout" or "") or 10
if TIMEOUT <= 0 then
	TIMEOUT = 10
end
local nodename = cluster.nodename()

local options = {}
local node_address = {}	-- node -> "host:port" | false
local node_sender = {}	-- node -> clustersender
local creating = {}	-- node -> coroutines waiting for its sender to start
local absent_waiting = {}	-- node -> { co = true } waiting for it to appear

local command = {}

local function split(address)
	local host, port = address:match "^(.+):(%d+)$"
	return host, tonumber(port)
end

local function wake_absent(node)
	local w = absent_waiting[node]
	if w then
		absent_waiting[node] = nil
		for co in pairs(w) do
			skynet.wakeup(co)
		end
	end
end

local function loadconfig(tmp)
	if tmp == nil then
		tmp = {}
		if config_name then
			local f = assert(io.open(config_name), "clusterd: can't open cluster config " .. config_name)
			local source = f:read "a"
			f:close()
			assert(load(source, "@" .. config_name, "t", tmp))()
		end
	end
	local changed = {}
	for name, address in pairs(tmp) do
		if type(name) == "string" and name:sub(1, 2) == "__" then
			local opt = name:sub(3)
			options[opt] = address
			skynet.error(format("Config %s = %s", opt, tostring(address)))
		else
			assert(type(name) == "string", "clusterd: a node name must be a string")
			assert(address == false or (type(address) == "string" and split(address)),
				format("clusterd: node %s: address must be \"host:port\" or false, got %s", name, tostring(address)))
			if node_address[name] ~= address then
				node_address[name] = address
				if node_sender[name] then
					changed[#changed + 1] = name
				end
			end
			wake_absent(name)
		end
	end
	if options.nowaiting then
		for name in pairs(absent_waiting) do
			wake_absent(name)
		end
	end
	for _, name in ipairs(changed) do
		local address = node_address[name]
		local host, port
		if address then
			host, port = split(address)
		else
			host = false
		end
		skynet.call(node_sender[name], "lua", "changenode", host, port)
	end
end

-- The sender of `node`, started on first use; nil and the reason if the
-- node is not in the config.
local function get_sender(node)
	local s = node_sender[node]
	if s then
		return s
	end
	if node_address[node] == nil and not options.nowaiting then
		skynet.error(format("Waiting for cluster node [%s]", node))
		local co = coroutine.running()
		local w = absent_waiting[node]
		if w == nil then
			w = {}
			absent_waiting[node] = w
		end
		w[co] = true
		skynet.timeout(math.max(1, math.floor(TIMEOUT * 100)), function()
			if w[co] then
				w[co] = nil
				skynet.wakeup(co)
			end
		end)
		skynet.wait(co)
		w[co] = nil
		if next(w) == nil and absent_waiting[node] == w then
			absent_waiting[node] = nil
		end
	end
	local address = node_address[node]
	if address == nil then
		return nil, format("cluster node [%s] is absent (not in the cluster config)", node)
	end
	s = node_sender[node]
	if s then
		return s
	end
	local waiting = creating[node]
	if waiting then
		local co = coroutine.running()
		waiting[#waiting + 1] = co
		skynet.wait(co)
		return node_sender[node] or nil, format("cluster node [%s]: no sender", node)
	end
	waiting = {}
	creating[node] = waiting
	local ok, c = pcall(skynet.newservice, "clustersender", node, nodename, tostring(address))
	creating[node] = nil
	if ok then
		node_sender[node] = c
		-- the address may have changed while the sender started
		if node_address[node] ~= address then
			local now = node_address[node]
			local host, port = false, nil
			if now then
				host, port = split(now)
			end
			skynet.call(c, "lua", "changenode", host, port)
		end
	end
	for _, co in ipairs(waiting) do
		skynet.wakeup(co)
	end
	if not ok then
		return nil, format("cluster node [%s]: can't start its sender: %s", node, tostring(c))
	end
	return c
end

function command.reload(_, cfg)
	loadconfig(cfg)
	skynet.ret(skynet.pack(nil))
end

function command.listen(_, addr, port, maxclient)
	local host = addr
	if port == nil then
		local address = node_address[addr]
		assert(address, format("clusterd: can't listen as node %s: it is %s", addr,
			address == false and "down" or "not in the cluster config"))
		host, port = split(address)
	end
	local gate = skynet.newservice("gate")
	local realaddr, realport = skynet.call(gate, "lua", "open",
		{ address = host, port = port, maxclient = maxclient, nodelay = true })
	skynet.ret(skynet.pack(realaddr, realport))
end

function command.sender(_, node)
	local s, err = get_sender(node)
	skynet.ret(skynet.pack(assert(s, err)))
end

function command.getsender(_, node)
	skynet.ret(skynet.pack(get_sender(node)))
end

function command.senders()
	skynet.retpack(node_sender)
end

local proxy = {}

function command.proxy(_, node, name)
	if name == nil then
		node, name = node:match "^([^@.]+)([@.].+)"
		if name == nil then
			error("clusterd: invalid proxy name " .. tostring(node))
		end
	end
	local fullname = node .. "." .. tostring(name)
	local p = proxy[fullname]
	if p == nil then
		p = skynet.newservice("clusterproxy", node, name)
		if proxy[fullname] then	-- another caller made one meanwhile
			skynet.kill(p)
			p = proxy[fullname]
		else
			proxy[fullname] = p
		end
	end
	skynet.ret(skynet.pack(p))
end

local cluster_agent = {}	-- fd -> agent | false (starting) | true (closed while starting)
local register_name = {}	-- name -> addr and addr -> name

local function clearnamecache()
	for _, agent in pairs(cluster_agent) do
		if type(agent) == "number" then
			skynet.send(agent, "lua", "namechange")
		end
	end
end

function command.register(source, name, addr)
	addr = addr or source
	local old = register_name[name]
	assert(old == nil or old == addr, format("clusterd: name %s is registered already (:%08x)", name, old or 0))
	local old_name = register_name[addr]
	if old_name and old_name ~= name then
		register_name[old_name] = nil
		clearnamecache()
	end
	register_name[addr] = name
	register_name[name] = addr
	skynet.ret(nil)
	skynet.error(format("Register [%s] :%08x", name, addr))
end

function command.unregister(_, name)
	local addr = register_name[name]
	if addr then
		register_name[addr] = nil
		register_name[name] = nil
		clearnamecache()
		skynet.error(format("Unregister [%s] :%08x", name, addr))
	end
	skynet.ret(nil)
end

function command.queryname(_, name)
	skynet.ret(skynet.pack(register_name[name]))
end

function command.socket(source, subcmd, fd, msg)
	if subcmd == "open" then
		skynet.error(format("socket accept from %s", tostring(msg)))
		cluster_agent[fd] = false
		local ok, agent = pcall(skynet.newservice, "clusteragent", skynet.self(), source, fd)
		local closed = cluster_agent[fd]
		if not ok then
			skynet.error(format("clusterd: can't start clusteragent for fd %d: %s", fd, tostring(agent)))
			cluster_agent[fd] = nil
			skynet.send(source, "lua", "kick", fd)
			return
		end
		if closed then
			skynet.send(agent, "lua", "exit")
			cluster_agent[fd] = nil
		else
			cluster_agent[fd] = agent
		end
	elseif subcmd == "close" or subcmd == "error" then
		local agent = cluster_agent[fd]
		if agent == false then
			cluster_agent[fd] = true
		elseif agent then
			skynet.send(agent, "lua", "exit")
			cluster_agent[fd] = nil
		end
	elseif subcmd ~= "warning" then
		skynet.error(format("socket %s %d %s", tostring(subcmd), fd, tostring(msg or "")))
	end
end

local function status()
	local nodes = {}
	for node, address in pairs(node_address) do
		nodes[node] = { connected = false, pending = 0, address = address }
	end
	for node, w in pairs(absent_waiting) do
		local n = 0
		for _ in pairs(w) do
			n = n + 1
		end
		nodes[node] = { connected = false, pending = n, address = nil,
			last_error = "not in the cluster config" }
	end
	for node, s in pairs(node_sender) do
		local ok, st = pcall(skynet.call, s, "lua", "status")
		if ok then
			nodes[node] = st
		else
			nodes[node] = { connected = false, pending = 0, last_error = "sender: " .. tostring(st) }
		end
	end
	return nodes
end

function command.status()
	skynet.retpack(status())
end

skynet.start(function()
	loadconfig()
	skynet.info_func(function()
		local names = {}
		for k, v in pairs(register_name) do
			if type(k) == "string" then
				names[k] = skynet.address(v)
			end
		end
		local agents = 0
		for _ in pairs(cluster_agent) do
			agents = agents + 1
		end
		return { nodes = status(), names = names, incoming = agents }
	end)
	skynet.dispatch("lua", function(_, source, cmd, ...)
		local f = assert(command[cmd], cmd)
		f(source, ...)
	end)
end)
