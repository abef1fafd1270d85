-- datacenterd (global name DATACENTER): a tree of values addressed by key
-- paths, shared by every service of the network.
--
-- lua commands:
--   QUERY(k1, k2, ...)          value at the path, or nil (also when the path
--                               runs below a missing key or a non-table value)
--   UPDATE(k1, ..., kn, value)  store value (intermediate tables are created);
--                               replies with the previous value
--   WAIT(k1, ...)               reply at once if a value exists; otherwise the
--                               reply is deferred until UPDATE stores a
--                               non-nil value where there was none. A waiter
--                               on a shorter path (a "branch" of the path being
--                               set) gets an error instead.

local skynet = require "skynet"

local store = {}	-- the data tree
local waiting = {}	-- same shape as the keys: nodes are branches or queues
local KIND = {}	-- private key marking a waiting node: "queue" or "branch"

-- Walks `node` along the remaining keys. A path that goes on below a
-- missing branch, or below a value that is not a table, leads to nothing.
local function lookup(node, key, ...)
	if key == nil then
		return node
	end
	if type(node) ~= "table" then
		return nil
	end
	return lookup(node[key], ...)
end

local command = {}

function command.QUERY(key, ...)
	local node = store[key]
	if node ~= nil then
		return lookup(node, ...)
	end
end

-- assign(node, k1, ..., kn, value): returns old value, new value
local function assign(node, key, value, ...)
	if select("#", ...) == 0 then
		local old = node[key]
		node[key] = value
		return old, value
	end
	if node[key] == nil then
		node[key] = {}
	end
	return assign(node[key], value, ...)
end

-- Finds the waiters of the path being set and detaches them. The arguments
-- are the UPDATE arguments: the keys followed by the value. Waiters found on
-- an intermediate key (they wait on a whole branch) are failed right away.
local function detach(node, key, ...)
	if key == nil then
		return nil
	end
	local entry = node[key]
	if entry == nil then
		return nil
	end
	if entry[KIND] ~= "queue" then
		return detach(entry, ...)
	end
	node[key] = nil
	if select("#", ...) == 1 then
		-- only the value is left: this is the exact key
		return entry
	end
	for _, resp in ipairs(entry) do
		resp(false)
	end
	return nil
end

function command.UPDATE(...)
	local old, value = assign(store, ...)
	if old ~= nil or value == nil then
		return old
	end
	local queue = detach(waiting, ...)
	if queue then
		for _, resp in ipairs(queue) do
			resp(true, value)
		end
	end
end

-- Parks the current request on the waiting tree under the given path.
local function park(node, key, nextkey, ...)
	local entry = node[key]
	if nextkey == nil then
		if entry == nil then
			entry = { [KIND] = "queue" }
			node[key] = entry
		else
			assert(entry[KIND] == "queue")
		end
		entry[#entry + 1] = skynet.response()
		return
	end
	if entry == nil then
		entry = { [KIND] = "branch" }
		node[key] = entry
	else
		assert(entry[KIND] == "branch")
	end
	return park(entry, nextkey, ...)
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		if cmd == "WAIT" then
			local value = command.QUERY(...)
			if value ~= nil then
				skynet.ret(skynet.pack(value))
			else
				park(waiting, ...)
			end
		else
			local f = assert(command[cmd])
			skynet.ret(skynet.pack(f(...)))
		end
	end)
end)
