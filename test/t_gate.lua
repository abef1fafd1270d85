-- A watchdog and agent for the gate tests (node/tests/gate.rs drives the
-- clients). Config `gate_kind`: "lua" (service/gate.lua) or "native"
-- (skynet.launch("gate", ...)). Three gates: "main" (room for 1000
-- clients), "small" (room for two) and "strict" (maxpacket 4096); all close
-- a client whose frame stays unfinished for 1 s. Every frame a client sends is answered on
-- its socket:
--   "kick"      the agent kicks the fd (the client then reads EOF)
--   "watchdog"  later frames go to the watchdog, answered "W:" .. frame
--   "remember:<tag>" / "seen:<tag>"  "ok" / "yes" or "no"
--   "count"     "N:<clients the watchdog saw open and not yet closed>"
--   other       "E:<length>:<sha1 hex of the frame>"
-- The watchdog prints "t_gate: open", "t_gate: close", "t_gate: error ...".

local skynet = require "skynet"
require "skynet.manager"
local driver = require "skynet.socketdriver"
local netpack = require "skynet.netpack"
local crypt = require "skynet.crypt"

local kind = skynet.getenv "gate_kind" or "lua"
local T = "t_gate"
local live = 0
local gate_of = {} -- fd -> gate handle
local seen = {} -- tags of "remember:" frames

local function say(fmt, ...)
	skynet.error(T .. ": " .. string.format(fmt, ...))
end

skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	pack = function(s) return s end,
	unpack = skynet.tostring,
}

local function reply(fd, text)
	local g = gate_of[fd]
	if kind == "native" then
		-- through the gate: payload + the fd as 4 bytes little endian
		skynet.send(g, "client", netpack.tostring(netpack.pack(text)) .. string.pack("<I4", fd))
	else
		driver.send(fd, netpack.pack(text))
	end
end

local function kick(fd)
	local g = gate_of[fd]
	if kind == "native" then
		skynet.send(g, "text", "kick " .. fd)
	else
		skynet.call(g, "lua", "kick", fd)
	end
end

local function to_watchdog(fd)
	local g = gate_of[fd]
	if kind == "native" then
		skynet.send(g, "text", string.format("forward %d :0 :0", fd))
	else
		skynet.call(g, "lua", "accept", fd)
	end
end

local function on_open(g, fd, addr)
	live = live + 1
	gate_of[fd] = g
	say("open %s", addr:match("^127%.0%.0%.1:%d+") and "127.0.0.1" or addr)
	if kind == "native" then
		skynet.send(g, "text", string.format("forward %d :%08x :0", fd, skynet.self()))
		skynet.send(g, "text", "start " .. fd)
	else
		skynet.call(g, "lua", "forward", fd)
	end
end

local function on_final(fd, what, text)
	live = live - 1
	say("%s%s", what, text and (" " .. text) or "")
end

local function on_frame(fd, msg)
	if msg == "kick" then
		kick(fd)
	elseif msg == "watchdog" then
		to_watchdog(fd)
		reply(fd, "ok")
	elseif msg:sub(1, 9) == "remember:" then
		seen[msg:sub(10)] = true
		reply(fd, "ok")
	elseif msg:sub(1, 5) == "seen:" then
		reply(fd, seen[msg:sub(6)] and "yes" or "no")
	elseif msg == "count" then
		reply(fd, "N:" .. live)
	else
		reply(fd, string.format("E:%d:%s", #msg, crypt.hexencode(crypt.sha1(msg))))
	end
end

-- the session of a client message is the fd
skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	pack = function(s) return s end,
	unpack = skynet.tostring,
	dispatch = function(fd, _, msg)
		skynet.ignoreret() -- the session is the fd
		on_frame(fd, msg)
	end,
}

local function launch_gate(max, maxpacket)
	if kind == "native" then
		-- the watchdog gets text; we read the port with the "address" call
		local g = skynet.launch("gate", string.format("S :%08x 127.0.0.1:0 0 %d %d 100", skynet.self(), max, maxpacket))
		assert(g, "native gate did not launch")
		local addr = skynet.call(g, "text", "address")
		return g, tonumber(addr:match(":(%d+)$"))
	end
	local g = skynet.newservice "gate"
	local _, port = skynet.call(g, "lua", "open", {
		address = "127.0.0.1",
		port = 0,
		maxclient = max + 1,
		nodelay = true,
		maxpacket = maxpacket,
		timeout = 100,
	})
	return g, port
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, what, event, fd, arg)
		assert(what == "socket")
		if event == "open" then
			on_open(source, fd, arg)
		elseif event == "close" then
			on_final(fd, "close")
		elseif event == "error" then
			on_final(fd, "error", arg)
		elseif event == "data" then
			reply(fd, "W:" .. arg)
		elseif event == "warning" then
			say("warning %d", arg)
		end
	end)
	-- the native gate's watchdog messages: "<fd> open <fd> <addr>:0",
	-- "<fd> close", "<fd> data <bytes>"
	skynet.dispatch("text", function(session, source, text)
		local fd, ev, rest = text:match("^(%d+) (%a+) ?(.*)$")
		fd = tonumber(fd)
		if ev == "open" then
			on_open(source, fd, rest:match("^%d+ (.*):0$"))
		elseif ev == "close" then
			on_final(fd, "close")
		elseif ev == "data" then
			reply(fd, "W:" .. rest)
		else
			say("FAIL odd text %q", text)
		end
	end)
	if kind == "native" then
		for _, args in ipairs {
			"S :0",
			string.format("X :%08x 127.0.0.1:0 0 10", skynet.self()),
			string.format("S :%08x 127.0.0.1:0 0 0", skynet.self()),
			"S .nobody 127.0.0.1:0 0 10",
			string.format("S :%08x 127.0.0.1:0 0 10 lots", skynet.self()),
		} do
			say("bad launch %s", tostring((skynet.launch("gate", args))))
		end
	end
	local _, port = launch_gate(1000, 65535)
	local _, small = launch_gate(2, 65535)
	local _, strict = launch_gate(1000, 4096)
	say("ports %d %d %d", port, small, strict)
	-- the test kills the node when it is done; this bounds a stuck run
	skynet.timeout(6000, function()
		say("TIMEOUT")
		skynet.abort()
	end)
end)
