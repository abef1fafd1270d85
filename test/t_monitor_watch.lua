-- The exit monitor used by t_monitor: logs each exit notification
-- (PTYPE_CLIENT, session 0, sent from the handle that exits).
local skynet = require "skynet"

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	unpack = function(msg, sz) return sz end,
	dispatch = function(session, source, sz)
		skynet.error("t_monitor: exit of", skynet.address(source), "session", session, "size", sz)
	end,
}

skynet.start(function() end)
