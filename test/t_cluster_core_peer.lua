-- Peer of t_cluster_core: the receiving ends of skynet's cluster services.
-- "req" packs a request from a message block another service handed over
-- (as clustersender does), and "client" messages are requests unpacked
-- straight from the message being dispatched (as clusteragent does).
local skynet = require "skynet"
local cluster = require "skynet.cluster.core"

local got = {}

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	unpack = cluster.unpackrequest,
	dispatch = function(_, _, addr, session, msg, sz, padding)
		if padding then
			got.large = got.large or { addr = addr }
			cluster.append(got.large, msg, sz)
			return
		end
		if got.large then
			addr = got.large.addr
			cluster.append(got.large, msg, sz)
			msg, sz = cluster.concat(got.large)
			got.large = nil
		end
		got[#got + 1] = { addr = addr, session = session, args = { skynet.unpack(msg, sz) } }
		skynet.trash(msg, sz)
	end,
}

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, addr, msg, sz)
		if cmd == "req" then
			local req, nexts, pieces = cluster.packrequest(addr, 1, msg, sz)
			local packets = { req }
			for _, p in ipairs(pieces or {}) do packets[#packets + 1] = p end
			skynet.ret(skynet.pack(nexts, packets))
		elseif cmd == "got" then
			local g = got
			got = {}
			skynet.ret(skynet.pack(g))
		end
	end)
end)
