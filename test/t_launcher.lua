-- The launcher's LIST, MEM, STAT, GC and KILL commands.
-- Lines start with "t_launcher:"; the last one is "t_launcher: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_launcher:", ...)
end

if mode == "child" then
	skynet.start(function()
		skynet.dispatch("lua", function() end)
	end)
	return
elseif mode == "mute" then
	-- never answers debug requests
	skynet.start(function()
		skynet.dispatch("debug", function()
			skynet.ignoreret()
		end)
	end)
	return
end

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys)
	return keys
end

skynet.start(function()
	local child = skynet.newservice(SERVICE_NAME, "child", "a", "b")
	local list = skynet.call(".launcher", "lua", "LIST")
	for _, addr in ipairs(sorted_keys(list)) do
		log("list", addr, list[addr])
	end
	log("self listed", list[skynet.address(skynet.self())])

	local mem = skynet.call(".launcher", "lua", "MEM")
	local shape = true
	for addr, text in pairs(mem) do
		if not text:match("^%d+%.%d%d Kb %(snlua .+%)$") then
			shape = false
			log("bad MEM entry", addr, text)
		end
	end
	log("mem entries", #sorted_keys(mem) == #sorted_keys(list), "shape", shape)
	log("mem child", (mem[skynet.address(child)]:match("Kb (%(.*%))$")))

	local stat = skynet.call(".launcher", "lua", "STAT")
	local s = stat[skynet.address(child)]
	log("stat child", math.type(s.task), math.type(s.mqlen), type(s.cpu), math.type(s.message), s.message > 0)
	local me = stat[skynet.address(skynet.self())]
	log("stat self task", me.task)	-- we are waiting for this very call

	mem = skynet.call(".launcher", "lua", "GC")
	log("gc returns mem", type(mem[skynet.address(child)]))

	-- a service that does not answer: TIMEOUT after ti centiseconds
	local mute = skynet.newservice(SERVICE_NAME, "mute")
	local t0 = skynet.now()
	mem = skynet.call(".launcher", "lua", "MEM", 10)
	log("mute mem", mem[skynet.address(mute)], "waited", skynet.now() - t0 >= 10)
	stat = skynet.call(".launcher", "lua", "STAT", 10)
	log("mute stat", stat[skynet.address(mute)])

	log("unknown command", table.unpack(skynet.call(".launcher", "lua", "NOPE")))
	local killed = skynet.call(".launcher", "lua", "KILL", mute)
	log("kill", killed[skynet.address(mute)])
	list = skynet.call(".launcher", "lua", "LIST")
	log("listed after kill", tostring(list[skynet.address(mute)]))
	log "done"
	skynet.abort()
end)
