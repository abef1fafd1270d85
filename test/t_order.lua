-- Ordering of forks, timers, yields, wakeups and messages; timer units.
-- Every line it prints starts with "t_order:"; the last one is "t_order: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

if mode == "yielder" then
	-- yield (sleep 0) goes to the back of the queue: messages already
	-- queued run before the yielding handler resumes
	skynet.start(function()
		skynet.dispatch("lua", function(session, _, cmd)
			if cmd == "a" then
				local t0 = skynet.hpc()
				while skynet.mqlen() < 2 and skynet.hpc() - t0 < 2 * 1000000000 do
				end
				skynet.error("t_order: yielder a1")
				skynet.yield()
				skynet.error("t_order: yielder a2")
			elseif cmd == "b" then
				skynet.error("t_order: yielder b")
			elseif cmd == "sync" then
				skynet.retpack()
			end
		end)
	end)
	return
end

if mode == "sink" then
	-- Counts numbered messages and remembers the first one out of order.
	local expected, bad = 1, nil
	skynet.start(function()
		skynet.dispatch("lua", function(session, _, cmd, n)
			if cmd == "seq" then
				if n ~= expected and not bad then
					bad = string.format("got %d expected %d", n, expected)
				end
				expected = n + 1
			elseif cmd == "result" then
				skynet.retpack(expected - 1, bad or "in order")
			end
		end)
	end)
	return
end

local function log(...)
	skynet.error("t_order:", ...)
end

local function forks()
	local seq = {}
	local function add(v) seq[#seq + 1] = v end
	skynet.fork(function() add "f1" end)
	skynet.fork(function(a, b) add("f2" .. a .. b) end, "x", "y")
	skynet.fork(function()
		add "f3"
		skynet.fork(function() add "f3.child" end)	-- queued behind f4
	end)
	skynet.fork(function() add "f4" end)
	add "main"
	skynet.yield()
	add "main.resumed"
	log("fork order", table.concat(seq, " "))
end

local function timers()
	local seq = {}
	local function add(v) seq[#seq + 1] = v end
	skynet.timeout(30, function() add "t30" end)
	skynet.timeout(10, function() add "t10" end)
	skynet.timeout(20, function() add "t20" end)
	skynet.timeout(0, function() add "t0" end)
	skynet.fork(function() add "fork" end)
	add "main"
	skynet.yield()	-- timeout(0) was queued first, so it runs before us
	add "yielded"
	skynet.sleep(40)
	add "slept"
	log("timer order", table.concat(seq, " "))
end

local function units()
	local t0, h0 = skynet.now(), skynet.hpc()
	skynet.sleep(10)
	local dt, dh = skynet.now() - t0, skynet.hpc() - h0
	log("sleep 10: now delta >= 10", dt >= 10, "hpc delta >= 100ms", dh >= 100 * 1000000, "not too late", dt < 60)
	if dt < 10 or dh < 100 * 1000000 then
		log("FAIL sleep 10 gave", dt, dh)
	end
	local h1 = skynet.hpc()
	local fired
	skynet.timeout(5, function() fired = skynet.hpc() - h1 end)
	skynet.sleep(20)
	log("timeout 5 fired after >= 50ms", fired ~= nil and fired >= 50 * 1000000)
	-- yield is sleep(0): it returns at once but goes through the queue
	local n0 = skynet.now()
	skynet.yield()
	log("yield is quick", skynet.now() - n0 < 10)
	log("time tracks the clock", math.abs(skynet.time() - os.time()) <= 2,
		"now is centiseconds since boot", skynet.now() >= 0 and skynet.now() < 100 * 60)
	log("starttime", skynet.starttime() == math.floor(skynet.time() - skynet.now() / 100 + 0.5))
end

local function wakeups()
	local seq = {}
	local function add(v) seq[#seq + 1] = v end
	-- an early wakeup makes sleep return "BREAK"
	local sleeper
	skynet.fork(function()
		sleeper = coroutine.running()
		local t0 = skynet.now()
		local r = skynet.sleep(30)
		add("sleep=" .. tostring(r))
		log("woken early", skynet.now() - t0 < 30)
	end)
	skynet.yield()	-- the fork is now sleeping
	add "wakeup"
	log("wakeup sleeping", skynet.wakeup(sleeper))
	log("wakeup again (already queued)", skynet.wakeup(sleeper))
	add "after.wakeup"	-- the sleeper runs only once we suspend
	skynet.yield()
	add "yielded"
	log("wakeup order", table.concat(seq, " "))
	log("wakeup not sleeping", tostring((skynet.wakeup(coroutine.running()))), tostring((skynet.wakeup({}))))

	-- a sleep with an explicit token
	local r
	skynet.fork(function() r = skynet.sleep(500, "TOKEN") end)
	skynet.yield()
	skynet.wakeup("TOKEN")
	skynet.yield()
	log("token sleep", r)

	-- wait / wakeup
	seq = {}
	local waiter
	skynet.fork(function()
		waiter = coroutine.running()
		add "wait"
		skynet.wait()
		add "waited"
	end)
	skynet.fork(function()
		skynet.wait("W")
		add "waited.W"
	end)
	skynet.yield()
	add "wakeup"
	skynet.wakeup("W")
	skynet.wakeup(waiter)
	add "after.wakeup"
	skynet.yield()
	log("wait order", table.concat(seq, " "))
	-- let the BREAKed sleep(30) timer fire: it must be dropped silently
	skynet.sleep(40)
end

local function messages()
	local sink = skynet.newservice(SERVICE_NAME, "sink")
	for i = 1, 10000 do
		skynet.send(sink, "lua", "seq", i)
	end
	log("sink", skynet.call(sink, "lua", "result"))
	local y = skynet.newservice(SERVICE_NAME, "yielder")
	skynet.send(y, "lua", "a")
	skynet.send(y, "lua", "b")
	skynet.send(y, "lua", "b")
	skynet.call(y, "lua", "sync")
	skynet.sleep(5)
end

skynet.start(function()
	forks()
	timers()
	units()
	wakeups()
	messages()
	log "done"
	skynet.abort()
end)
