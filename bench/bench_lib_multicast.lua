-- skynet.multicast: one publisher sends a 100-byte string (skynet.pack'd)
-- to 1,000 subscriber services, PUBLISHES times; the figure is deliveries
-- handled by all subscribers (each unpacks the payload) per second of wall
-- time, from the first publish until the last subscriber has seen the last
-- message.
local skynet = require "skynet"
local mc = require "skynet.multicast"
require "skynet.manager"

local SUBSCRIBERS = 1000
local PUBLISHES = 200

local mode = ...

if mode == "sub" then
	skynet.start(function()
		local chan
		skynet.dispatch("lua", function(_, _, channel, want, main)
			local n = 0
			chan = mc.new {
				channel = channel,
				dispatch = function(_, _, msg)
					n = n + 1
					if n == want then
						n = 0
						skynet.send(main, "lua", #msg)
					end
				end,
			}
			chan:subscribe()
			skynet.ret()
		end)
	end)
	return
end

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

skynet.start(function()
	local finished, waiter = 0, nil
	skynet.dispatch("lua", function()
		finished = finished + 1
		if finished == SUBSCRIBERS and waiter then
			skynet.wakeup(waiter)
		end
	end)
	local function wait_all()
		waiter = coroutine.running()
		if finished < SUBSCRIBERS then
			skynet.wait(waiter)
		end
		finished, waiter = 0, nil
	end

	local chan = mc.new()
	local payload = string.rep("x", 100)
	local subs = {}
	for i = 1, SUBSCRIBERS do
		subs[i] = skynet.newservice("bench_lib_multicast", "sub")
	end
	-- warm-up round: one publish each subscriber counts as a full round
	for i = 1, SUBSCRIBERS do
		skynet.call(subs[i], "lua", chan.channel, 1, skynet.self())
	end
	chan:publish(payload)
	wait_all()
	-- the measured rounds: each subscriber reports after PUBLISHES messages
	chan:unsubscribe()
	chan:delete()
	chan = mc.new()
	for i = 1, SUBSCRIBERS do
		skynet.call(subs[i], "lua", chan.channel, PUBLISHES, skynet.self())
	end
	local t0 = skynet.hpc()
	for _ = 1, PUBLISHES do
		chan:publish(payload)
	end
	wait_all()
	local dt = (skynet.hpc() - t0) / 1e9
	report("multicast_deliveries", SUBSCRIBERS * PUBLISHES / dt, "deliveries/s")
	report("multicast_publishes", PUBLISHES / dt, "publishes/s")
	skynet.abort()
end)
