-- gate: skynet's Lua gate service on snax.gateserver, driven by a watchdog.
--
-- lua commands: open(conf) -> address, port (conf.watchdog, else the caller,
-- becomes the watchdog; other keys as in snax.gateserver); close;
-- forward(fd [, client [, agent]]) sends the fd's packets to agent (default
-- the caller) as "client" messages (session = fd, source = client) and starts
-- reading; accept(fd) starts reading with packets going to the watchdog;
-- kick(fd) closes the client.
--
-- The watchdog gets lua messages "socket", event, fd, ...: "open" addr,
-- "close", "error" text, "warning" kb, and "data" msg (a string) while the
-- fd has no agent. Every "open" is followed by exactly one "close" or
-- "error" (see snax.gateserver).

local skynet = require "skynet"
local gateserver = require "snax.gateserver"
local netpack = require "skynet.netpack"

local watchdog
local connection = {} -- fd -> { fd, ip, agent, client }

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
}

local handler = {}

function handler.open(source, conf)
	watchdog = conf.watchdog or source
	return conf.address, conf.port
end

function handler.message(fd, msg, sz)
	local c = connection[fd]
	local agent = c and c.agent
	if agent then
		-- the block goes on as it is; the agent owns it now
		skynet.redirect(agent, c.client, "client", fd, msg, sz)
	else
		skynet.send(watchdog, "lua", "socket", "data", fd, netpack.tostring(msg, sz))
	end
end

function handler.connect(fd, addr)
	connection[fd] = { fd = fd, ip = addr }
	skynet.send(watchdog, "lua", "socket", "open", fd, addr)
end

function handler.disconnect(fd)
	connection[fd] = nil
	skynet.send(watchdog, "lua", "socket", "close", fd)
end

function handler.error(fd, msg)
	connection[fd] = nil
	skynet.send(watchdog, "lua", "socket", "error", fd, msg)
end

function handler.warning(fd, size)
	skynet.send(watchdog, "lua", "socket", "warning", fd, size)
end

local CMD = {}

function CMD.forward(source, fd, client, address)
	local c = assert(connection[fd], "gate: forward of an unknown fd")
	c.client = client or 0
	c.agent = address or source
	gateserver.openclient(fd)
end

function CMD.accept(source, fd)
	local c = assert(connection[fd], "gate: accept of an unknown fd")
	c.agent = nil
	c.client = nil
	gateserver.openclient(fd)
end

function CMD.kick(source, fd)
	gateserver.closeclient(fd)
end

function handler.command(cmd, source, ...)
	local f = assert(CMD[cmd], cmd)
	return f(source, ...)
end

gateserver.start(handler)
