-- cluster_mc: the start service of the two-harbor multicast test
-- (integration-tests/tests/multicast.rs). Every node registers itself in the
-- datacenter under ("mc_test", harbor) and serves:
--   "spawn", mode   -> a new t_multicast service ("sub" or "pub") on this node
--   "new"           -> a new channel owned by this node
--   "live"          -> packages alive in the process, shared blocks alive
-- The node whose config says cluster_role = "driver" runs the checks against
-- harbor 2 and prints "cluster_mc: <what> <result>" lines, then
-- "cluster_mc: done".
local skynet = require "skynet"
local mc = require "skynet.multicast"
local mccore = require "skynet.multicast.core"
local stm = require "skynet.stm"
local datacenter = require "skynet.datacenter"

local harbor_id = skynet.harbor(skynet.self())

local function log(...)
	skynet.error("cluster_mc:", ...)
end

local command = {}
local channels = {}	-- keeps the channel objects made here

function command.spawn(mode)
	return skynet.newservice("t_multicast", mode)
end

function command.new()
	local c = mc.new()
	channels[#channels + 1] = c
	return c.channel
end

function command.live()
	local _, blocks = stm.live()
	return mccore.live(), blocks
end

-- Collects reports from `subs` until each one has got `want` (a list of
-- lines; none: for 0.2 s) or 5 s passed; returns how many got exactly that.
local function wait_reports(subs, want)
	if #want == 0 then
		skynet.sleep(20)	-- nothing must come: give it the time to
	end
	want = table.concat(want, ",")
	local got = {}
	for i = 1, #subs do
		got[i] = {}
	end
	for _ = 1, 100 do
		local done = true
		for i, s in ipairs(subs) do
			local r = skynet.call(s, "lua", "report")
			if r ~= "" then
				table.insert(got[i], r)
			end
			if table.concat(got[i], ",") ~= want then
				done = false
			end
		end
		if done then
			break
		end
		skynet.sleep(5)
	end
	local n = 0
	for i = 1, #subs do
		local g = table.concat(got[i], ",")
		if g == want then
			n = n + 1
		else
			log("FAIL", "subscriber", skynet.address(subs[i]), "got", g, "want", want)
		end
	end
	return n
end

local function lines(from, text, n)
	local t = {}
	for i = 1, n do
		t[i] = skynet.address(from) .. " " .. text .. " " .. i
	end
	return t
end

local function subscribe_all(subs, c)
	for _, s in ipairs(subs) do
		assert(skynet.call(s, "lua", "sub", c))
	end
end

local function both_quiet(peer)
	local p1, b1, p2, b2
	for _ = 1, 100 do
		p1, b1 = command.live()
		p2, b2 = skynet.call(peer, "lua", "live")
		if p1 == 0 and p2 == 0 then
			break
		end
		skynet.sleep(5)
	end
	return string.format("packages %d %d", p1, p2)
end

local function drive()
	local peer = datacenter.wait("mc_test", 2)
	local here, there = {}, {}
	for i = 1, 3 do
		here[i] = command.spawn("sub")
		there[i] = skynet.call(peer, "lua", "spawn", "sub")
	end
	local all = { here[1], here[2], here[3], there[1], there[2], there[3] }
	local pub_here = command.spawn("pub")
	local pub_there = skynet.call(peer, "lua", "spawn", "pub")

	-- a channel made on harbor 2, subscribed and published from harbor 1
	local c2 = skynet.call(peer, "lua", "new")
	log("channel of harbor 2 low byte", c2 % 256)
	subscribe_all(all, c2)
	for i = 1, 5 do
		assert(skynet.call(pub_here, "lua", c2, "from 1", i))
	end
	log("harbor 1 publishes to harbor 2's channel", wait_reports(all, lines(pub_here, "from 1", 5)), "of 6")
	for i = 1, 5 do
		assert(skynet.call(pub_there, "lua", c2, "from 2", i))
	end
	log("harbor 2 publishes to its channel", wait_reports(all, lines(pub_there, "from 2", 5)), "of 6")

	-- and the other way round
	local c1 = command.new()
	log("channel of harbor 1 low byte", c1 % 256)
	subscribe_all(all, c1)
	for i = 1, 5 do
		assert(skynet.call(pub_there, "lua", c1, "to 1", i))
	end
	log("harbor 2 publishes to harbor 1's channel", wait_reports(all, lines(pub_there, "to 1", 5)), "of 6")
	for i = 1, 3 do
		assert(skynet.call(pub_here, "lua", c1, "local", i))
	end
	log("harbor 1 publishes to its channel", wait_reports(all, lines(pub_here, "local", 3)), "of 6")
	log("after delivery", both_quiet(peer))

	-- harbor 1's subscribers leave c2: harbor 2 stops sending copies
	for _, s in ipairs(here) do
		skynet.call(s, "lua", "unsub", c2)
	end
	skynet.sleep(10)	-- let the USUBR reach harbor 2
	assert(skynet.call(pub_there, "lua", c2, "after unsub", 1))
	assert(skynet.call(pub_here, "lua", c2, "after unsub", 2))
	local want = { skynet.address(pub_there) .. " after unsub 1", skynet.address(pub_here) .. " after unsub 2" }
	log("harbor 2's subscribers still get c2", wait_reports(there, want), "of 3")
	log("harbor 1's subscribers get nothing", wait_reports(here, {}), "of 3")

	-- delete c2 from harbor 1: its owner drops it
	local dc = mc.new { channel = c2 }
	dc:delete()
	skynet.sleep(10)
	log("publish on harbor 2 after delete", skynet.call(pub_there, "lua", c2, "x"))
	log("subscribe on harbor 1 after delete", skynet.call(here[1], "lua", "sub", c2))
	log("at the end", both_quiet(peer))
	log("done")
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		skynet.ret(skynet.pack(command[cmd](...)))
	end)
	datacenter.set("mc_test", harbor_id, skynet.self())
	log("ready", harbor_id)
	if skynet.getenv "cluster_role" == "driver" then
		drive()
	end
end)
