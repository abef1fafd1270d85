-- Gate benchmark node (driven by `skynet-bench gate`, which is the clients):
-- a watchdog in front of our Lua gate (service/gate.lua) or our native gate
-- (config gate_kind = "lua" | "native", gate_port), forwarding every client to one of
-- two echo agents, which write each frame straight back to its socket.
-- It runs on C skynet too (its own gate.lua and C gate), for comparison.
local skynet = require "skynet"
require "skynet.manager"
local driver = require "skynet.socketdriver"
local netpack = require "skynet.netpack"

local mode = ...

if mode == "agent" then
	skynet.register_protocol {
		name = "client",
		id = skynet.PTYPE_CLIENT,
		unpack = function(msg, sz) return msg, sz end,
		dispatch = function(fd, _, msg, sz)
			skynet.ignoreret() -- the session is the fd
			driver.send(fd, netpack.pack(msg, sz))
		end,
	}
	skynet.start(function() end)
	return
end

local kind = skynet.getenv "gate_kind" or "lua"
local port = tonumber(skynet.getenv "gate_port" or "0")
local max = 20000

skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	pack = function(s) return s end,
	unpack = skynet.tostring,
}

skynet.start(function()
	local agents = { skynet.newservice("bench_gate", "agent"), skynet.newservice("bench_gate", "agent") }
	local n = 0
	local gate
	local function pick()
		n = n + 1
		return agents[n % #agents + 1]
	end
	if kind == "native" then
		gate = skynet.launch("gate", string.format("S :%08x 127.0.0.1:%d 0 %d", skynet.self(), port, max))
		skynet.dispatch("text", function(_, _, text)
			local fd, ev = text:match("^(%d+) (%a+)")
			if ev == "open" then
				skynet.send(gate, "text", string.format("forward %s :%08x :0", fd, pick()))
				skynet.send(gate, "text", "start " .. fd)
			end
		end)
	else
		gate = skynet.newservice "gate"
		skynet.dispatch("lua", function(_, _, what, ev, fd)
			if ev == "open" then
				skynet.call(gate, "lua", "forward", fd, 0, pick())
			end
		end)
		port = select(2, skynet.call(gate, "lua", "open", {
			address = "127.0.0.1", port = port, maxclient = max + 1, nodelay = true, backlog = 1024,
		}))
	end
	skynet.error(string.format("bench_gate: port %d", port))
end)
