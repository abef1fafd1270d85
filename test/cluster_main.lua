-- cluster_main: the start service of every node in the cluster tests
-- (integration-tests/tests/cluster.rs). Every node serves a cluster_echo
-- registered as "ECHO<harbor>"; config `cluster_role` picks what else the
-- node does. Lines start with "cluster_main:"; checks print "ok <what>" or
-- "FAIL <what>"; a driver ends with "cluster_main: done".
--
--   serve         only serve
--   basic         cross-node calls, payload sizes, ordering, names, link,
--                 datacenter, global uniqueservice
--   kill          calls pending on harbor 2 while the test kills it; then
--                 waits until harbor 2 is back (rejoin)
--   stop          the same while the test stops harbor 2 (SIGSTOP), then
--                 waits until the link is back after SIGCONT
--   master        traffic while the master is down; registers "DURING"
--   late          joins after a master restart: every name must resolve
--   busy          calls ECHO2 while harbor 2's only worker is busy for 4.5 s
--   fake          talks to a fake harbor 9 run by the test
local skynet = require "skynet"
local harbor = require "skynet.harbor"
local datacenter = require "skynet.datacenter"
require "skynet.manager"

local function log(...)
	skynet.error("cluster_main:", ...)
end

local function check(cond, what, ...)
	log(cond and "ok" or "FAIL", what, ...)
	return cond
end

local function show(addr)
	if type(addr) == "number" then
		return skynet.address(addr)
	end
	return addr
end

local function now_ms()
	return skynet.hpc() // 1000000
end

-- Waits until pred() is true, polling every 10 ms, for at most `limit` ms.
local function wait_until(pred, limit)
	local t0 = now_ms()
	while not pred() do
		if now_ms() - t0 > limit then
			return false
		end
		skynet.sleep(1)
	end
	return true
end

local role = {}

function role.serve()
end

function role.basic()
	harbor.connect(1)
	harbor.connect(2)
	log("connected to 1 and 2")
	local e1 = harbor.queryname "ECHO1"
	local e2 = harbor.queryname "ECHO2"
	check(skynet.harbor(e1) == 1 and skynet.harbor(e2) == 2, "queryname",
		skynet.address(e1), skynet.address(e2))

	check(skynet.call("ECHO2", "lua", "echo", "hi") == "hi", "call by name")
	local a, b = skynet.call(e1, "lua", "echo", "x", 7)
	check(a == "x" and b == 7, "call by handle")

	for _, n in ipairs { 1, 64 * 1024, 4 * 1024 * 1024 } do
		local s = string.rep("0123456789abcdef", n // 16 + 1):sub(1, n)
		for _, target in ipairs { "ECHO1", e2 } do
			local t0 = now_ms()
			local r = skynet.call(target, "lua", "echo", s)
			check(r == s, "echo payload", n, "to", show(target), (now_ms() - t0) .. " ms")
			check(#skynet.call(target, "lua", "blob", n) == n, "reply payload", n, "from", show(target))
			skynet.send(target, "lua", "size", s)
		end
	end

	for _, target in ipairs { "ECHO2", e1 } do
		skynet.call(target, "lua", "seqreset")
		local t0 = now_ms()
		for i = 1, 10000 do
			skynet.send(target, "lua", "seq", i)
		end
		local c, bad, last = skynet.call(target, "lua", "seqstat")
		check(c == 10000 and bad == 0 and last == 10000, "10k ordered sends to", show(target),
			c, bad, last, (now_ms() - t0) .. " ms")
	end

	do
		local big = string.rep("o", 0xfffff3 + 1)
		local t0 = now_ms()
		local ok = pcall(skynet.call, "ECHO2", "lua", "size", big)
		check(not ok, "oversize call fails at once", (now_ms() - t0) .. " ms")
	end

	do
		local t0 = now_ms()
		local ok = pcall(skynet.call, (2 << 24) | 0xabcdef, "lua", "echo", 1)
		check(not ok, "call to a missing service on harbor 2 fails", (now_ms() - t0) .. " ms")
	end

	do
		skynet.call("ECHO2", "lua", "register_later", "LATE", 50)
		local t0 = now_ms()
		local late = harbor.queryname "LATE"
		local dt = now_ms() - t0
		check(skynet.harbor(late) == 2 and dt >= 300, "queryname blocked until registration",
			skynet.address(late), dt .. " ms")
		skynet.call("ECHO1", "lua", "register_later", "LATE1", 30)
		t0 = now_ms()
		local r = skynet.call("LATE1", "lua", "echo", "late")
		dt = now_ms() - t0
		check(r == "late" and dt >= 200, "call to a name registered later", dt .. " ms")
	end

	do
		local t0 = now_ms()
		harbor.link(77)
		harbor.connect(3)
		check(now_ms() - t0 < 500, "link to an unknown harbor and connect to self return at once")
		local returned = false
		skynet.fork(function()
			harbor.link(2)
			returned = true
		end)
		skynet.sleep(30)
		check(not returned, "link to a live harbor blocks")
	end

	do
		datacenter.set("cluster", "from3", "v3")
		check(skynet.call("ECHO2", "lua", "dc_get", "cluster", "from3") == "v3",
			"datacenter set on 3, read on 2")
		local got
		skynet.fork(function()
			got = datacenter.wait("cluster", "later")
		end)
		skynet.sleep(10)
		skynet.call("ECHO2", "lua", "dc_set", "cluster", "later", "v2")
		wait_until(function() return got ~= nil end, 3000)
		check(got == "v2", "datacenter wait on 3, set on 2")
		local dc = harbor.queryname "DATACENTER"
		check(skynet.harbor(dc) == 1, "DATACENTER is on harbor 1", skynet.address(dc))
	end

	do
		local u3 = skynet.uniqueservice(true, "cluster_echo")
		local u2 = skynet.call("ECHO2", "lua", "unique", "cluster_echo")
		check(u3 == u2 and skynet.harbor(u3) == 1, "global uniqueservice",
			skynet.address(u3), skynet.address(u2))
		check(skynet.queryservice(true, "cluster_echo") == u3, "global queryservice")
	end
	log("done")
end

-- Calls that never get an answer from ECHO2, for the kill/stop tests.
local function pending_calls(n)
	local failed = 0
	for i = 1, n do
		skynet.fork(function()
			local ok, err = pcall(skynet.call, "ECHO2", "lua", "hang")
			if ok then
				log("FAIL hang call", i, "returned")
			else
				failed = failed + 1
				log("hang call failed", i, err)
				if failed == n then
					log("all calls failed")
				end
			end
		end)
	end
	return function()
		return failed == n
	end
end

local function wait_back(what)
	local t0 = now_ms()
	local ok = wait_until(function()
		local ok, r = pcall(skynet.call, "ECHO2", "lua", "echo", "back")
		return ok and r == "back"
	end, 30000)
	check(ok, what, (now_ms() - t0) .. " ms")
end

local function after_down()
	local t0 = now_ms()
	local ok = pcall(skynet.call, "ECHO2", "lua", "echo", 1)
	check(not ok, "a call after the failure fails at once", (now_ms() - t0) .. " ms")
end

function role.kill()
	harbor.connect(2)
	harbor.queryname "ECHO2"
	local linked = true
	skynet.fork(function()
		harbor.link(2)
		linked = false
		log("link 2 returned")
	end)
	local all_failed = pending_calls(5)
	skynet.sleep(20)
	log("pending 5")
	check(wait_until(all_failed, 15000), "pending calls failed")
	check(wait_until(function() return not linked end, 5000), "link waiter returned")
	after_down()
	log("waiting for rejoin")
	wait_back "rejoined"
	log("done")
end

function role.stop()
	harbor.connect(2)
	harbor.queryname "ECHO2"
	local all_failed = pending_calls(3)
	skynet.sleep(20)
	log("pending 3")
	check(wait_until(all_failed, 20000), "pending calls failed")
	after_down()
	log("waiting for relink")
	wait_back "relinked"
	log("done")
end

function role.master()
	harbor.connect(1)
	harbor.connect(2)
	harbor.queryname "ECHO1"
	harbor.queryname "ECHO2"
	local lost = false
	skynet.fork(function()
		harbor.linkmaster()
		lost = true
		log("master lost")
	end)
	log("ready for master kill")
	check(wait_until(function() return lost end, 20000), "linkmaster returned")
	local good = 0
	for i = 1, 20 do
		local r1 = skynet.call("ECHO1", "lua", "echo", i)
		local r2 = skynet.call("ECHO2", "lua", "echo", i)
		if r1 == i and r2 == i then
			good = good + 1
		end
		skynet.sleep(2)
	end
	check(good == 20, "traffic between nodes while the master is down", good)
	skynet.newservice("cluster_echo", "DURING")
	log("outage checks done")
end

function role.late()
	for _, name in ipairs { "ECHO1", "ECHO2", "ECHO3", "DURING" } do
		local t0 = now_ms()
		local h = harbor.queryname(name)
		local ok, r = pcall(skynet.call, name, "lua", "echo", name)
		check(ok and r == name, "after master restart, name", name, skynet.address(h), (now_ms() - t0) .. " ms")
	end
	log("done")
end

function role.busy()
	harbor.connect(2)
	harbor.queryname "ECHO2"
	skynet.call("ECHO2", "lua", "seqreset")
	-- Back-to-back calls first: harbor 2's idle worker reads them itself, so
	-- its harbor thread stops watching the link (see node/src/cluster/link/read.rs)
	-- and must notice on its own that the worker is then busy.
	for i = 1, 3000 do
		skynet.call("ECHO2", "lua", "echo", i)
	end
	local t0 = now_ms()
	local ok, r
	skynet.fork(function()
		ok, r = pcall(skynet.call, "ECHO2", "lua", "busy", 4500)
	end)
	-- Sends that queue up on harbor 2 behind the busy handler.
	for i = 1, 200 do
		skynet.send("ECHO2", "lua", "seq", i)
		if i % 20 == 0 then
			skynet.sleep(20)
		end
	end
	check(wait_until(function() return ok ~= nil end, 20000), "busy call ended")
	check(ok and r == 4500, "call to a node whose only worker was busy for 4.5 s", tostring(r),
		(now_ms() - t0) .. " ms")
	local count, gaps = skynet.call("ECHO2", "lua", "seqstat")
	check(count == 200 and gaps == 0, "sends during the busy time all arrived in order", count, gaps)
	log("done")
end

function role.fake()
	harbor.connect(9)
	log("connected to 9")
	local r = skynet.call((9 << 24) | 5, "lua", "echo", "ping")
	check(r == "pong", "call answered by the fake harbor", tostring(r))
	local failed_at
	skynet.fork(function()
		local ok = pcall(skynet.call, (9 << 24) | 6, "lua", "hang")
		failed_at = now_ms()
		check(not ok, "call pending on harbor 9 fails when its link is dropped")
	end)
	log("pending on 9")
	check(wait_until(function() return failed_at ~= nil end, 20000), "pending call on 9 ended")
	local t0 = now_ms()
	local ok = pcall(skynet.call, (9 << 24) | 5, "lua", "echo", "again")
	check(not ok, "harbor 9 is down after the bad frame", (now_ms() - t0) .. " ms")
	check(skynet.call("ECHO2", "lua", "echo", "still") == "still", "still serving harbor 2")
	log("done")
end

skynet.start(function()
	local id = skynet.harbor(skynet.self())
	skynet.newservice("cluster_echo", "ECHO" .. id)
	log("ready", id)
	local r = skynet.getenv "cluster_role" or "serve"
	local f = role[r]
	if not f then
		log("FAIL unknown role", r)
		return
	end
	f()
end)
