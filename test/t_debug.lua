-- The debug protocol: PING, MEM, STAT, INFO (skynet.info_func), TASK,
-- SUPPORT, GC, TERM, KILLTASK, EXIT.
-- Lines start with "t_debug:"; the last one is "t_debug: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_debug:", ...)
end

if mode == "target" then
	skynet.start(function()
		skynet.info_func(function(...)
			return { hello = "world", args = table.concat({ ... }, ",") }
		end)
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "park" then
				skynet.sleep(1000)	-- suspended: shows in TASK
				skynet.retpack "unparked"
			end
		end)
	end)
	return
end

skynet.start(function()
	local t = skynet.newservice(SERVICE_NAME, "target")
	log("ping", select("#", skynet.call(t, "debug", "PING")))
	local kb = skynet.call(t, "debug", "MEM")
	log("mem", math.type(kb), kb > 10)
	local stat = skynet.call(t, "debug", "STAT")
	log("stat", math.type(stat.task), math.type(stat.mqlen), type(stat.cpu), stat.message > 0)
	local info = skynet.call(t, "debug", "INFO", "x", "y")
	log("info", info.hello, info.args)
	log("support", skynet.call(t, "debug", "SUPPORT", "lua"), skynet.call(t, "debug", "SUPPORT", "nothing"))

	local parked
	skynet.fork(function()
		parked = table.pack(pcall(skynet.call, t, "lua", "park"))
	end)
	skynet.sleep(2)
	local task = skynet.call(t, "debug", "TASK")
	local n, key, trace = 0, nil, nil
	for k, v in pairs(task) do
		n = n + 1
		key, trace = k, v
	end
	log("task", n, key:match("^thread: %S+ session: %d+$") ~= nil, trace:match("sleep") ~= nil)
	log("stat task", skynet.call(t, "debug", "STAT").task)

	skynet.send(t, "debug", "GC")
	-- KILLTASK: kills the parked thread, its caller gets an error
	local thread = key:match("^(thread: %S+)")
	skynet.call(t, "debug", "KILLTASK", thread)
	skynet.sleep(2)
	log("killtask", parked[1], tostring(parked[2]):match("call failed$"))
	log("killtask unknown", skynet.call(t, "debug", "KILLTASK", "thread: nowhere"))

	local ok, err = pcall(skynet.call, t, "debug", "NO_SUCH_COMMAND")
	log("unknown command", ok, tostring(err):match("call failed$"))

	-- EXIT makes the service exit
	skynet.send(t, "debug", "EXIT")
	skynet.sleep(2)
	ok, err = pcall(skynet.call, t, "debug", "PING")
	log("after EXIT", ok, tostring(err):match("call to invalid address") ~= nil)
	log "done"
	skynet.abort()
end)
