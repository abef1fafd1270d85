-- Prototypes shared between services (skynet.codecache): a module loaded by
-- several services behaves the same in each, including one that held its own
-- copy of one of the module's strings before the module was first loaded.
-- Lines start with "t_shared:"; the last one is "t_shared: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_shared:", ...)
end

local function show(who, r)
	log(who, r.by_constant, r.by_key, r.lookup, r.made, r.made_constant, r.plain, r.weak)
end

skynet.start(function()
	local early = skynet.newservice("t_shared_peer", "early")
	local m = require "t_shared_mod"	-- first load in the process: cached and shared now
	log("main", m.zz_shared_key_42, m[string.format("%s_%d", "zz_shared_key", 42)])
	local late = skynet.newservice("t_shared_peer", "late")
	show("early", skynet.call(early, "lua"))
	show("late", skynet.call(late, "lua"))
	local many = {}
	for i = 1, 20 do
		many[i] = skynet.newservice("t_shared_peer", "late")
	end
	local same = 0
	for i = 1, 20 do
		local r = skynet.call(many[i], "lua")
		if r.by_key == 1 and r.made == 3 then same = same + 1 end
	end
	log("many", same)
	log "done"
	skynet.abort()
end)
