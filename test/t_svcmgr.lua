-- service_mgr: uniqueservice / queryservice, local and "global" (harbor 0).
-- Lines start with "t_svcmgr:"; the last one is "t_svcmgr: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_svcmgr:", ...)
end

if mode == "uniq" or mode == "global" then
	local args = table.pack(...)
	skynet.start(function()
		skynet.sleep(10)	-- slow start: concurrent callers must wait
		log("started", table.unpack(args, 1, args.n))
		skynet.dispatch("lua", function()
			skynet.retpack(mode)
		end)
	end)
	return
end

skynet.start(function()
	-- a query before anyone launched the global one waits for it
	local gquery
	skynet.fork(function()
		gquery = skynet.queryservice(true, SERVICE_NAME)
	end)
	-- concurrent uniqueservice callers all get the one instance
	local got = {}
	for i = 1, 3 do
		skynet.fork(function()
			got[i] = skynet.uniqueservice(SERVICE_NAME, "uniq", i)
		end)
	end
	skynet.sleep(30)
	log("concurrent", got[1] ~= nil, got[1] == got[2], got[2] == got[3])
	log("again", skynet.uniqueservice(SERVICE_NAME, "other") == got[1], skynet.queryservice(SERVICE_NAME) == got[1])
	log("answers", skynet.call(got[1], "lua"))

	log("global query waiting", gquery == nil)
	local g = skynet.uniqueservice(true, SERVICE_NAME, "global")
	log("global", g ~= got[1], skynet.call(g, "lua"))
	skynet.yield()
	log("global query returned", gquery == g)

	-- a unique service that cannot start: its callers get the error
	local ok = pcall(skynet.uniqueservice, "t_svcmgr_missing")
	log("missing", ok)
	ok = pcall(skynet.queryservice, "t_svcmgr_missing")
	log("query missing", ok)

	local list = skynet.call(".service", "lua", "LIST")
	log("list", list[SERVICE_NAME] == skynet.address(got[1]), list["@" .. SERVICE_NAME] == skynet.address(g),
		tostring(list.t_svcmgr_missing):match("^Error: ") ~= nil)
	log "done"
	skynet.abort()
end)
