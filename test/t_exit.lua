-- Service exit and kill with pending callers, skynet.term, killthread,
-- and skynet.request():select.
-- Lines start with "t_exit:"; the last one is "t_exit: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_exit:", ...)
end

if mode == "exitinit" then
	skynet.start(function()
		skynet.exit()
	end)
	return
elseif mode == "failinit" then
	skynet.start(function()
		error("start refuses")
	end)
	return
elseif mode == "worker" then
	local deferred = {}
	local cmd = {}
	function cmd.ping(ti, text)
		skynet.sleep(ti)
		skynet.retpack(text)
	end
	function cmd.hold()
		local guard <close> = setmetatable({}, {
			__close = function() log "hold closed" end,	-- runs when exit unwinds us
		})
		skynet.sleep(1000)
		skynet.retpack "held"
	end
	function cmd.busy(ms)
		local t0 = skynet.hpc()
		while skynet.hpc() - t0 < ms * 1000000 do
		end
	end
	function cmd.defer(key)
		deferred[key] = skynet.response()
	end
	function cmd.test(key)
		skynet.retpack(deferred[key] "TEST")
	end
	function cmd.fail()
		error "worker fails"
	end
	function cmd.never()
		skynet.ignoreret()
	end
	function cmd.quit()
		skynet.exit()
	end
	function cmd.callout(addr, ...)
		-- a call of ours that is pending when we exit
		skynet.fork(skynet.call, addr, "lua", ...)
		skynet.retpack(true)
	end
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, name, ...)
			cmd[name](...)
		end)
	end)
	return
end

local function outcome(f, ...)
	local ok, err = pcall(f, ...)
	if ok then
		return "ok " .. tostring(err)
	end
	return (tostring(err):match("call failed$") or tostring(err):match("call to invalid address.*$") or err)
end

local function exit_with_callers()
	local w = skynet.newservice(SERVICE_NAME, "worker")
	local keeper = skynet.newservice(SERVICE_NAME, "worker")
	local results = {}
	skynet.fork(function() results.hold = outcome(skynet.call, w, "lua", "hold") end)
	skynet.fork(function() results.defer = outcome(skynet.call, w, "lua", "defer", "k") end)
	-- w calls keeper, which keeps the response: it is dropped when w exits
	skynet.call(w, "lua", "callout", keeper, "defer", "fromw")
	skynet.sleep(2)
	log("keeper pending before", skynet.call(keeper, "lua", "test", "fromw"))
	skynet.send(w, "lua", "quit")
	skynet.sleep(5)
	log("pending hold", results.hold)
	log("pending deferred", results.defer)
	log("keeper pending after", skynet.call(keeper, "lua", "test", "fromw"))
	log("call after exit", outcome(skynet.call, w, "lua", "ping", 0, "x"))
	skynet.send(keeper, "lua", "quit")
end

local function launch_outcomes()
	local r = table.pack(skynet.newservice(SERVICE_NAME, "exitinit"))
	log("newservice exit in start", tostring(r[1]))
	local ok, err = pcall(skynet.newservice, SERVICE_NAME, "failinit")
	log("newservice error in start", ok, tostring(err):match("call failed$"))
end

local function kill_and_term()
	local w = skynet.newservice(SERVICE_NAME, "worker")
	local answered = false
	skynet.fork(function()
		skynet.call(w, "lua", "hold")
		answered = true
	end)
	skynet.sleep(2)
	skynet.kill(w)
	log("call after kill", outcome(skynet.call, w, "lua", "ping", 0, "x"))
	skynet.sleep(5)
	log("caller of a killed service answered", answered)

	-- requests still queued when a service is killed are answered with errors
	local w3 = skynet.newservice(SERVICE_NAME, "worker")
	skynet.send(w3, "lua", "busy", 200)
	local queued
	skynet.fork(function() queued = outcome(skynet.call, w3, "lua", "ping", 0, "x") end)
	skynet.sleep(5)
	skynet.kill(w3)
	skynet.sleep(30)
	log("queued call to a killed service", queued)

	-- term: fail the calls pending to a service that will not answer
	local w2 = skynet.newservice(SERVICE_NAME, "worker")
	local r
	skynet.fork(function() r = outcome(skynet.call, w2, "lua", "never") end)
	skynet.sleep(2)
	log("before term", tostring(r))
	skynet.term(w2)
	skynet.yield()
	log("after term", r)
	log("term does not kill", skynet.call(w2, "lua", "ping", 0, "alive"))
	skynet.send(w2, "lua", "quit")
end

local function killthreads()
	local w = skynet.newservice(SERVICE_NAME, "worker")
	local flags = {}
	local sleeper = skynet.fork(function()
		skynet.sleep(1000)	-- (its timer would fire long after the test)
		flags.sleeper = true
	end)
	local caller = skynet.fork(function()
		skynet.call(w, "lua", "ping", 5, "late")
		flags.caller = true
	end)
	local forked = skynet.fork(function() flags.forked = true end)
	log("killthread of a fork not started", skynet.killthread(forked) == forked)
	skynet.yield()
	log("killthread sleeping", skynet.killthread(sleeper) == sleeper)
	log("killthread calling", skynet.killthread(tostring(caller)) == caller)
	log("killthread unknown", tostring((skynet.killthread(coroutine.create(print)))))
	skynet.sleep(15)	-- the timer and the reply come back and are dropped
	log("flags", tostring(flags.sleeper), tostring(flags.caller), tostring(flags.forked))
	skynet.send(w, "lua", "quit")
end

local function selects()
	local w = skynet.newservice(SERVICE_NAME, "worker")
	local req = skynet.request()
	for _, ti in ipairs { 5, 1, 4, 2, 3 } do
		req:add { w, "lua", "ping", ti, "P" .. ti }
	end
	local order = {}
	for r, resp in req:select() do
		order[#order + 1] = resp[1] .. "/" .. r[4]
	end
	log("select order", table.concat(order, " "))

	req = skynet.request { w, "lua", "ping", 2, "fast" }
	req:add { w, "lua", "fail" }
	req:add { 0x00ffff00, "lua", "ping", 0, "nobody" }
	req:add { w, "lua", "ping", 50, "slow" }
	order = {}
	for r, resp in req:select(20) do
		local what
		if resp == nil then
			what = "invalid:" .. r[5]
		elseif resp == false then
			what = "error:" .. r[3]
		else
			what = "resp:" .. resp[1] .. ":n=" .. resp.n
		end
		order[#order + 1] = what
	end
	log("select with timeout", table.concat(order, " "), "timeout", req.timeout)

	-- leaving a select early abandons what is outstanding
	order = {}
	for r, resp in skynet.request({ w, "lua", "ping", 1, "first" }) { w, "lua", "ping", 10, "second" }:select() do
		order[#order + 1] = resp[1]
		break
	end
	skynet.sleep(20)
	log("select break", table.concat(order, " "))
	skynet.send(w, "lua", "quit")
end

skynet.start(function()
	exit_with_callers()
	launch_outcomes()
	kill_and_term()
	killthreads()
	selects()
	skynet.sleep(50)	-- the slow ping of the timed-out select is answered and dropped
	log "done"
	skynet.abort()
end)
