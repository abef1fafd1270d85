-- skynet.harbor: cross-node naming and link monitoring, served by `.cslave`
-- (cslave on a multi-node network, cdummy on a single node).

local skynet = require "skynet"

local SLAVE = ".cslave"

local harbor = {}

-- Binds a global name to `handle` (default: this service). One-way.
function harbor.globalname(name, handle)
	skynet.send(SLAVE, "lua", "REGISTER", name, handle or skynet.self())
end

-- Resolves a global (or ".local") name; blocks until the name exists.
function harbor.queryname(name)
	return skynet.call(SLAVE, "lua", "QUERYNAME", name)
end

-- Blocks while harbor `id` stays connected; returns once it is gone
-- (or at once if it is not connected).
function harbor.link(id)
	skynet.call(SLAVE, "lua", "LINK", id)
end

-- Blocks until harbor `id` is connected.
function harbor.connect(id)
	skynet.call(SLAVE, "lua", "CONNECT", id)
end

-- Blocks until the connection to the master is lost.
function harbor.linkmaster()
	skynet.call(SLAVE, "lua", "LINKMASTER")
end

return harbor
