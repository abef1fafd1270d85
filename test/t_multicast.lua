-- skynet.multicast on one node: channel ids, many subscribers getting every
-- publish in order with the publisher as source, unsubscribe, delete,
-- packages freed after the last delivery (also when a subscriber dies with
-- deliveries queued), and bad use reported as errors.
-- Lines start with "t_multicast:"; the last one is "t_multicast: done".
local skynet = require "skynet"
local core = require "skynet.core"
local mc = require "skynet.multicast"
local mccore = require "skynet.multicast.core"
local stm = require "skynet.stm"
require "skynet.manager"

local mode = ...

if mode == "sub" then
	local got = {}
	local chans = {}	-- channel id -> channel object
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, channel)
			if cmd == "sub" then
				local c = mc.new {
					channel = channel,
					dispatch = function(c, source, ...)
						local t = { skynet.address(source), ... }
						for i = 1, #t do
							local v = t[i]
							t[i] = type(v) == "table" and "{" .. table.concat(v, " ") .. "}" or tostring(v)
						end
						got[#got + 1] = table.concat(t, " ")
					end,
				}
				chans[channel] = c
				skynet.ret(skynet.pack(pcall(c.subscribe, c)))
			elseif cmd == "unsub" then
				chans[channel]:unsubscribe()
				skynet.ret(skynet.pack(true))
			elseif cmd == "report" then
				local r = table.concat(got, ",")
				got = {}
				skynet.ret(skynet.pack(r))
			elseif cmd == "spin" then
				-- busy while deliveries queue up behind this message, then exit
				local till = skynet.now() + 30
				while skynet.now() < till do end
				skynet.exit()
			end
		end)
	end)
	return
end

if mode == "pub" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, channel, ...)
			local c = mc.new { channel = channel }
			skynet.ret(skynet.pack(pcall(c.publish, c, ...)))
		end)
	end)
	return
end

local function log(...)
	skynet.error("t_multicast:", ...)
end

local _, blocks0 = stm.live()
local function held()
	local _, blocks = stm.live()
	return string.format("packages %d blocks %d", mccore.live(), blocks - blocks0)
end

-- How many subscribers reported exactly `want`; the others are logged.
local function reports(subs, first, last, want)
	local n = 0
	for i = first, last do
		local r = skynet.call(subs[i], "lua", "report")
		if r == want then
			n = n + 1
		else
			log("FAIL", "subscriber", i, "got", r, "want", want)
		end
	end
	return n
end

skynet.start(function()
	local me = skynet.address(skynet.self())
	local c = mc.new()
	local c2 = mc.new()
	log("channel ids", c.channel % 256, c.channel ~= 0, c2.channel - c.channel, tostring(c))

	local N = 20
	local subs = {}
	for i = 1, N do
		subs[i] = skynet.newservice("t_multicast", "sub")
		assert(skynet.call(subs[i], "lua", "sub", c.channel))
	end
	local want = {}
	for i = 1, 5 do
		c:publish("m", i, { i })
		want[i] = me .. " m " .. i .. " {" .. i .. "}"
	end
	log("in order from the publisher", reports(subs, 1, N, table.concat(want, ",")), "of", N)
	log("held after delivery", held())

	local p2 = skynet.newservice("t_multicast", "pub")
	assert(skynet.call(p2, "lua", c.channel, "from p2"))
	log("second publisher", reports(subs, 1, N, skynet.address(p2) .. " from p2"), "of", N)

	for i = 1, 5 do
		skynet.call(subs[i], "lua", "unsub", c.channel)
	end
	c:publish("after unsub")
	log("unsubscribed get nothing", reports(subs, 1, 5, ""), "of 5")
	log("subscribed get it", reports(subs, 6, N, me .. " after unsub"), "of", N - 5)

	-- a forged delivery: the subscriber logs an error and carries on
	core.send(subs[6], skynet.PTYPE_MULTICAST, c.channel, string.rep("\0", 8))
	c:publish("after forgery")
	log("after a forged delivery", reports(subs, 6, N, me .. " after forgery"), "of", N - 5)

	-- a subscriber dies with deliveries queued
	local dying = skynet.newservice("t_multicast", "sub")
	assert(skynet.call(dying, "lua", "sub", c.channel))
	skynet.send(dying, "lua", "spin")
	for i = 1, 5 do
		c:publish("to the dying", i)
	end
	-- it spins 0.3 s, then exits: wait for it to be gone (at most 5 s)
	for _ = 1, 100 do
		if held() == "packages 0 blocks 0" then
			break
		end
		skynet.sleep(5)
	end
	log("held after the dying subscriber", held())
	c:publish("after death")
	log("others unaffected", reports(subs, 6, N, table.concat({
		me .. " to the dying 1", me .. " to the dying 2", me .. " to the dying 3",
		me .. " to the dying 4", me .. " to the dying 5", me .. " after death" }, ",")), "of", N - 5)
	log("held at the end of publishing", held())

	-- delete
	local id = c.channel
	c:delete()
	log("deleted", tostring(c))
	local ok, err = pcall(c.publish, c, "x")
	log("publish on the deleted object", ok, err)
	local again = mc.new { channel = id }
	ok, err = pcall(again.publish, again, "x")
	log("publish to a deleted channel", ok, err)
	ok, err = skynet.call(subs[7], "lua", "sub", id)
	log("subscribe to a deleted channel", ok, err)
	c2:delete()
	log("held after delete", held())

	-- the native module refuses bad pointers
	local p, sz = skynet.pack("x")
	log("close of a non-package", pcall(mccore.close, p))
	skynet.trash(p, sz)
	local h = mccore.pack(skynet.pack("y"))
	local pkg = mccore.bind(h, 1)
	log("bind twice", pcall(mccore.bind, h, 1))
	mccore.close(pkg)
	log("closed twice", pcall(mccore.close, pkg))
	log("unpack size", pcall(mccore.unpack, h, 4))
	skynet.sleep(1)	-- a new message: blocks read by this one are unpinned
	log("held at the end", held())
	log("done")
	skynet.abort()
end)
