-- Handles, local names and their text formats at harbor 0.
-- Lines start with "t_names:"; the last one is "t_names: done".
local skynet = require "skynet"
local core = require "skynet.core"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_names:", ...)
end

if mode == "global" then
	skynet.start(function()
		skynet.register "T_NAMES_G"	-- a global name, through .cslave (cdummy)
		skynet.dispatch("lua", function(_, _, x)
			skynet.retpack("global got " .. tostring(x))
		end)
	end)
	return
elseif mode == "child" then
	skynet.start(function()
		skynet.dispatch("lua", function()
			skynet.retpack(skynet.self())
		end)
	end)
	return
end

skynet.start(function()
	local me = skynet.self()
	log("self", math.type(me), skynet.address(me), skynet.address(me) == string.format(":%08x", me))
	log("REG", core.command "REG", core.command "REG" == string.format(":%x", me))
	log("address of a string", skynet.address ".name", skynet.address(nil))
	log("harbor", skynet.harbor(me))
	log("harbor of a remote handle", skynet.harbor(0x03000010))
	log("launcher", skynet.localname ".launcher", core.command("QUERY", ".launcher"))
	log("service", skynet.localname ".service" ~= nil, "cslave", skynet.localname ".cslave" ~= nil)
	log("unknown name", tostring((skynet.localname ".t_names_nobody")))

	skynet.register ".t_names_me"
	log("register", skynet.localname ".t_names_me" == me)
	local child = skynet.newservice(SERVICE_NAME, "child")
	skynet.name(".t_names_child", child)
	log("name", skynet.localname ".t_names_child" == child)
	skynet.name(".t_names_me", child)	-- already taken: silently ignored
	log("duplicate name", skynet.localname ".t_names_me" == me)
	log("call by name", skynet.call(".t_names_child", "lua") == child)
	log("call by :hex", skynet.call(string.format(":%x", child), "lua") == child)

	local launched = core.command("LAUNCH", "snlua " .. SERVICE_NAME .. " child")
	log("LAUNCH result", launched:match("^:%x%x%x%x%x%x%x%x$") ~= nil, launched == launched:upper(),
		tonumber(launched:sub(2), 16) == child + 1)
	log("skynet.launch", skynet.launch("snlua", SERVICE_NAME, "child") == child + 2)

	skynet.kill(child)
	log("name dies with the handle", tostring((skynet.localname ".t_names_child")))

	-- global names on a single node
	local harbor = require "skynet.harbor"
	local g = skynet.newservice(SERVICE_NAME, "global")
	log("queryname", harbor.queryname "T_NAMES_G" == g)
	log("call global name", skynet.call("T_NAMES_G", "lua", 1))
	local later
	skynet.fork(function() later = harbor.queryname "T_NAMES_LATER" end)
	skynet.sleep(2)
	harbor.globalname("T_NAMES_LATER", g)
	skynet.sleep(2)
	log("queryname waits", later == g)
	-- a call to a global name nobody registers waits until skynet.term
	local r
	skynet.fork(function() r = table.pack(pcall(skynet.call, "T_NAMES_NONE", "lua", "x")) end)
	skynet.sleep(5)
	log("unregistered global before term", tostring(r))
	skynet.term "T_NAMES_NONE"
	skynet.yield()
	log("after term", r[1], tostring(r[2]):match("call failed$"))
	log "done"
	skynet.abort()
end)
