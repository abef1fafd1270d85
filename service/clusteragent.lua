-- clusteragent: serves one incoming cluster connection, launched by clusterd
-- as `clusteragent <clusterd> <gate> <fd>`.
--
-- The gate forwards the connection's packets here as "client" messages; each
-- is a request of the cluster wire format (skynet.cluster.core): a call or a
-- push to an address or to a registered "@name", possibly in parts, a name
-- query (address 0), or a trace tag for the next request. Calls are made to
-- the local target and their replies (or errors, cut to 32 KiB) are written
-- back on the fd. Pushes are sent on in the order they arrived.
--
-- lua commands: exit (the connection is gone), namechange (forget the names
-- looked up so far).

local skynet = require "skynet"
local socket = require "skynet.socket"
local cluster = require "skynet.cluster.core"

local clusterd, gate, fd = ...
clusterd = assert(tonumber(clusterd))
gate = assert(tonumber(gate))
fd = assert(tonumber(fd))

local format = string.format
local large = {}	-- session -> the parts of a multi-part request so far
local tracetag	-- the tag for the next request

-- Registered names ("@name" -> address), looked up in clusterd on first use;
-- concurrent lookups of one name wait for the first.
local names
local lookups = {}	-- name -> waiting coroutines

local function lookup(name)
	local known = names[name]
	if known ~= nil then
		return known or nil
	end
	local waiting = lookups[name]
	if waiting then
		local co = coroutine.running()
		waiting[#waiting + 1] = co
		skynet.wait(co)
		return names[name] or nil
	end
	waiting = {}
	lookups[name] = waiting
	local table_now = names
	local ok, addr = pcall(skynet.call, clusterd, "lua", "queryname", name:sub(2))
	addr = ok and addr or nil
	-- a miss is not kept: the name may be registered later
	if addr and table_now == names then
		names[name] = addr
	end
	lookups[name] = nil
	for _, co in ipairs(waiting) do
		skynet.wakeup(co)
	end
	return addr
end

local function forget_names()
	names = {}
end
forget_names()

local function reply(session, ok, msg, sz)
	local packet = cluster.packresponse(session, ok, msg, sz)
	if type(packet) == "table" then
		for _, p in ipairs(packet) do
			socket.write(fd, p)
		end
	else
		socket.write(fd, packet)
	end
end

local function dispatch(_, _, addr, session, msg, sz, more, is_push)
	skynet.ignoreret()	-- the session here is the fd's: nobody to answer
	if session == nil then
		tracetag = addr
		return
	end
	if more then
		local req = large[session]
		if req == nil then
			req = { addr = addr, is_push = is_push, tracetag = tracetag }
			tracetag = nil
			large[session] = req
		end
		cluster.append(req, msg, sz)
		return
	end
	local req = large[session]
	local tag
	if req then
		large[session] = nil
		cluster.append(req, msg, sz)
		msg, sz = cluster.concat(req)
		addr, is_push, tag = req.addr, req.is_push, req.tracetag
		if not msg then
			if not is_push then
				reply(session, false, "Invalid large req")
			end
			return
		end
	else
		tag = tracetag
		tracetag = nil
	end
	if addr == 0 then
		local ok, name = pcall(skynet.unpack, msg, sz)
		skynet.trash(msg, sz)
		local found = ok and type(name) == "string" and lookup("@" .. name)
		if found then
			reply(session, true, skynet.packstring(found))
		else
			reply(session, false, "name not found")
		end
		return
	end
	if cluster.isname(addr) then
		addr = lookup(addr)
		if addr == nil then
			skynet.trash(msg, sz)
			if not is_push then
				reply(session, false, "Invalid name")
			end
			return
		end
	end
	if is_push then
		skynet.rawsend(addr, "lua", msg, sz)
		return
	end
	local ok, rmsg, rsz
	if tag then
		ok, rmsg, rsz = pcall(skynet.tracecall, tag, addr, "lua", msg, sz)
	else
		ok, rmsg, rsz = pcall(skynet.rawcall, addr, "lua", msg, sz)
	end
	if ok then
		-- the reply block is the message being handled: freed after it
		reply(session, true, rmsg, rsz)
	else
		reply(session, false, tostring(rmsg))
	end
end

skynet.start(function()
	skynet.register_protocol {
		name = "client",
		id = skynet.PTYPE_CLIENT,
		unpack = cluster.unpackrequest,
		dispatch = dispatch,
	}
	skynet.dispatch("lua", function(_, source, cmd)
		if cmd == "exit" then
			skynet.exit()
		elseif cmd == "namechange" then
			forget_names()
		else
			skynet.error(format("clusteragent: invalid command %s from %s", tostring(cmd), skynet.address(source)))
		end
	end)
	-- the fd may be gone already (closed before the forward): clusterd then
	-- sends exit
	local ok, err = pcall(skynet.call, gate, "lua", "forward", fd)
	if not ok then
		skynet.error(format("clusteragent: forward of fd %d failed: %s", fd, tostring(err)))
	end
end)
