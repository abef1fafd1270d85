-- clusterproxy: a local address standing for a service on another cluster
-- node, launched by clusterd as `clusterproxy <node> <addr | name>`.
--
-- lua and snax messages sent to it go to that service: a send as a push, a
-- call as a request whose reply (or failure) comes back to the caller.
-- Messages keep their order, as they go through the node's one sender.

local skynet = require "skynet"
require "skynet.manager"	-- skynet.forward_type

local node, address = ...
address = tonumber(address) or address

skynet.register_protocol {
	name = "system",
	id = skynet.PTYPE_SYSTEM,
	unpack = function(...) return ... end,
}

local forward_map = {
	[skynet.PTYPE_SNAX] = skynet.PTYPE_SYSTEM,
	[skynet.PTYPE_LUA] = skynet.PTYPE_SYSTEM,
	[skynet.PTYPE_RESPONSE] = skynet.PTYPE_RESPONSE,	-- the caller of rawcall owns it
}

skynet.forward_type(forward_map, function()
	local clusterd = skynet.uniqueservice("clusterd")
	local sender
	local function get()
		if not sender then
			local err
			sender, err = skynet.call(clusterd, "lua", "getsender", node)
			if not sender then
				error(err)
			end
		end
		return sender
	end
	skynet.dispatch("system", function(session, _, msg, sz)
		local ok, s = pcall(get)
		if not ok then
			skynet.trash(msg, sz)
			skynet.error(string.format("clusterproxy %s %s: %s", node, tostring(address), s))
			if session ~= 0 then
				skynet.response()(false)
			end
			return
		end
		if session == 0 then
			skynet.send(s, "lua", "push", address, msg, sz)
		else
			skynet.ret(skynet.rawcall(s, "lua", skynet.pack("req", address, msg, sz)))
		end
	end)
end)
