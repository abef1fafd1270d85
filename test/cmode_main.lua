-- cmode_main: the start service of the cluster-mode tests
-- (integration-tests/tests/cluster_mode.rs): nodes with harbor = 0 talking
-- through skynet.cluster. Config `cmode_role` picks the part:
--
--   server  serves cmode_echo registered as "echo" on port cmode_port
--   client  every call path against node "srv" (and "mv", "down", "refused",
--           "silent", "nosuch"); ends with "cmode: done"
--   probe   calls srv every 100 ms and prints each result (the test kills,
--           stops and restarts the server meanwhile)
--   wire    talks to the test's scripted listener (node "sdb")
--   cut     errors over 32 KiB from "srv" and from "errp" (the server's
--           cmode_errpeer); ends with "cmode: done"
--   snax    cluster.snax on "srv" (a server with cmode_snax set): by
--           name, by address, by registered name; ends with "cmode: done"
--
-- A server with cmode_errpeer_port also runs cmode_errpeer on that port; with
-- cmode_snax it runs snax_counter as a unique snax service (label "unique")
-- and another one (label "byaddr") registered as "counter".
--
-- Lines start with "cmode:"; checks print "ok <what>" or "FAIL <what>".
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local function log(...)
	skynet.error("cmode:", ...)
end

local function check(cond, what, ...)
	log(cond and "ok" or "FAIL", what, ...)
	return cond
end

local function ms()
	return skynet.hpc() // 1000000
end

-- pcall(f, ...) -> ok, result-or-error, elapsed ms
local function timed(f, ...)
	local t0 = ms()
	local ok, r = pcall(f, ...)
	return ok, r, ms() - t0
end

local TIMEOUT_MS = math.floor((tonumber(skynet.getenv "cluster_timeout") or 10) * 1000)

local role = {}

function role.server()
	local echo = skynet.newservice("cmode_echo")
	cluster.register("echo", echo)
	-- one name per address (a second register renames): sdb is another one
	cluster.register("sdb", skynet.newservice("cmode_echo"))
	local errport = skynet.getenv "cmode_errpeer_port"
	if errport then
		skynet.newservice("cmode_errpeer", errport)
	end
	if skynet.getenv "cmode_snax" then
		local snax = require "skynet.snax"
		snax.uniqueservice("snax_counter", "unique")
		cluster.register("counter", snax.newservice("snax_counter", "byaddr").handle)
	end
	local addr, port = cluster.open(tonumber(skynet.getenv "cmode_port"))
	log(string.format("ready echo=:%08x port=%s", echo, tostring(port)))
end

local function fails_with(what, needle, bound_ms, f, ...)
	local ok, err, t = timed(f, ...)
	check(not ok and tostring(err):find(needle, 1, true) ~= nil and t <= bound_ms,
		what, string.format("(%d ms, bound %d ms): %s", t, bound_ms, tostring(err)))
end

-- Runs f in a fork; the returned function waits until f has ended.
local function background(f)
	local done, waiting = false, nil
	skynet.fork(function()
		f()
		done = true
		if waiting then
			skynet.wakeup(waiting)
		end
	end)
	return function()
		if not done then
			waiting = coroutine.running()
			skynet.wait(waiting)
		end
	end
end

function role.client()
	local a, b, c = cluster.call("srv", "@echo", "echo", 1, "a", { x = 1 })
	check(a == 1 and b == "a" and type(c) == "table" and c.x == 1, "call by name")

	local addr = cluster.query("srv", "echo")
	check(type(addr) == "number" and cluster.call("srv", addr, "echo", "byaddr") == "byaddr",
		"call by address", addr)

	for _, n in ipairs { 1, 100, 32767, 32768, 32769, 65536, 1 << 20, 4 << 20 } do
		local s = string.rep(string.char(65 + n % 26), n)
		local r = cluster.call("srv", "@echo", "echo", s)
		local sz = cluster.call("srv", "@echo", "size", s)
		local big = cluster.call("srv", addr, "big", n)
		check(r == s and sz == n and #big == n, "payload", n)
	end

	-- order of 10,000 sends of mixed sizes, some over 32 KiB
	cluster.call("srv", "@echo", "reset")
	local t0 = ms()
	for i = 1, 10000 do
		local len = (i % 97 == 0) and 40000 + i or i % 50
		cluster.send("srv", "@echo", "seq", i, string.rep("s", len))
	end
	local got, bad = cluster.call("srv", "@echo", "check")
	check(got == 10000 and bad == 0, "order of 10000 sends", got, bad, ms() - t0, "ms")

	-- 100 concurrent calls
	local left, wrong = 100, 0
	local done = coroutine.running()
	for i = 1, 100 do
		skynet.fork(function()
			local s = string.rep("c", i * 400)
			local ok, r, n = pcall(cluster.call, "srv", "@echo", "echo", s, i)
			if not (ok and r == s and n == i) then
				wrong = wrong + 1
			end
			left = left - 1
			if left == 0 then
				skynet.wakeup(done)
			end
		end)
	end
	skynet.wait(done)
	check(wrong == 0, "100 concurrent calls", wrong)

	fails_with("handler error", "remote error", 2000, cluster.call, "srv", "@echo", "fail")
	fails_with("unknown name", "Invalid name", 2000, cluster.call, "srv", "@nope", "echo")
	fails_with("query of an unknown name", "name not found", 2000, cluster.query, "srv", "nope")
	fails_with("node mapped to false", "is down", 200, cluster.call, "down", "@echo", "echo")
	fails_with("refused connection", "connect failed", 1000, cluster.call, "refused", "@echo", "echo")
	-- why a call failed is kept for the caller to ask, but not forever: a
	-- caller that died first must not leave it in the sender
	local forgotten = background(function()
		local s = cluster.get_sender("refused")
		local function failed_req(token)
			local msg, sz = skynet.pack("echo")
			return not pcall(skynet.rawcall, s, "lua", skynet.pack("req", "@echo", msg, sz, token))
		end
		local failed = failed_req("asked at once") and failed_req("never asked")
		local at_once = skynet.call(s, "lua", "error", "asked at once")
		skynet.sleep(TIMEOUT_MS // 10 + 100)
		local late = skynet.call(s, "lua", "error", "never asked")
		check(failed and tostring(at_once):find("connect failed", 1, true) and late == nil,
			"failure reasons forgotten after cluster_timeout", at_once, late)
	end)
	fails_with("unknown node", "absent", TIMEOUT_MS + 1000, cluster.call, "nosuch", "@echo", "echo")
	fails_with("silent peer", "no answer", TIMEOUT_MS + 1000, cluster.call, "silent", "@echo", "echo")
	cluster.send("down", "@echo", "echo")	-- dropped, no error
	cluster.send("nosuch", "@echo", "echo")

	-- proxy
	local p = cluster.proxy("srv", "@echo")
	check(skynet.call(p, "lua", "echo", "px") == "px", "proxy call")
	local p2 = cluster.proxy("srv@echo")
	check(p2 == p, "proxy by full name")

	-- status while a call is in flight, and the debug INFO of clusterd
	local slow_ok
	local slow = background(function()
		slow_ok = cluster.call("srv", "@echo", "sleep", 50)
	end)
	skynet.sleep(10)
	local st = cluster.status()
	check(st.srv and st.srv.connected == true and st.srv.pending == 1, "status in flight",
		st.srv and st.srv.pending)
	slow()
	st = cluster.status()
	check(slow_ok == true and st.srv.pending == 0 and st.down and st.down.connected == false,
		"status after")
	check(st.refused and tostring(st.refused.last_error):find("connect failed", 1, true),
		"status last_error", st.refused and st.refused.last_error)
	local clusterd = skynet.uniqueservice("clusterd")
	local info = skynet.call(clusterd, "debug", "INFO")
	check(info.nodes.srv.connected == true and info.nodes.srv.pending == 0
		and info.nodes.down.connected == false, "debug INFO")

	-- reload with a changed address: in-flight calls fail, new ones move
	check(cluster.call("mv", "@echo", "whoami") == "A", "mv is A")
	local moved_err, moved_t
	local inflight = background(function()
		local ok, err, t = timed(cluster.call, "mv", "@echo", "sleep", 300)
		moved_err = ok and "succeeded" or tostring(err)
		moved_t = t
	end)
	skynet.sleep(20)
	cluster.reload { mv = skynet.getenv "cmode_b" }
	inflight()
	check(moved_err:find("moved", 1, true) and moved_t < 1000, "reload fails in-flight call",
		moved_t, moved_err)
	check(cluster.call("mv", "@echo", "whoami") == "B", "reload moves new calls")

	-- a node that was false, then given an address
	cluster.reload { down = skynet.getenv "cmode_b" }
	check(cluster.call("down", "@echo", "whoami") == "B", "false node given an address")
	cluster.reload { down = false }
	fails_with("node set to false", "is down", 200, cluster.call, "down", "@echo", "echo")

	-- trace tags reach the other node
	skynet.trace("cmode-trace")
	check(cluster.call("srv", "@echo", "echo", "traced") == "traced", "traced call")
	forgotten()
	log("done")
end

function role.probe()
	while true do
		local ok, r, t = timed(cluster.call, "srv", "@echo", "whoami")
		if ok then
			log("probe ok", t)
		else
			log("probe fail", t, r)
		end
		skynet.sleep(10)
	end
end

function role.wire()
	local addr = cluster.query("sdb", "sdb")
	log("wire query", addr)
	log("wire get", cluster.call("sdb", "@sdb", "GET", "a"))
	local ok, err = pcall(cluster.call, "sdb", "@nope", "GET", "a")
	log("wire nope", ok, err)
	local big = cluster.call("sdb", "@sdb", "BIG")
	log("wire big", #big, big == string.rep("x", 40000))
	log("done")
end

-- skynet's clusteragent cuts an error text to 32 KiB (packresponse); a
-- handler's own error stays on its node, the caller learns "call failed".
local CUT = 0x8000

function role.cut()
	local ok, err = pcall(cluster.call, "srv", "@echo", "fail_long", 100000)
	err = tostring(err)
	check(not ok and err:find("remote error", 1, true) and err:find("call failed", 1, true)
		and #err < 1000 and not err:find("EEEE", 1, true),
		"a handler's 100 KB error stays on its node", #err, err)
	check(cluster.call("srv", "@echo", "echo", "after") == "after", "srv serves after")
	for _, n in ipairs { 100000, CUT - 1, CUT, CUT + 1 } do
		-- the peer's text for n bytes, as an ok reply (multipart when long)
		local full = cluster.call("errp", "@h", "text", n)
		ok, err = pcall(cluster.call, "errp", "@h", "fail", n)
		local got = not ok and tostring(err):match("remote error: (.*)$")
		check(#full == n and got == full:sub(1, CUT), "error of " .. n .. " bytes cut",
			got and #got or tostring(err):sub(1, 200))
	end
	check(cluster.call("errp", "@h", "echo", "after", 1) == "after", "errp serves after")
	log("done")
end

function role.snax()
	local unique = cluster.snax("srv", "snax_counter")
	check(unique.req.get() == 0, "snax by name: req")
	unique.post.add(5)
	unique.post.add(1)
	check(unique.req.get() == 6, "snax by name: post then req")
	local a, b = unique.req.echo("x", 2)
	check(a == "x" and b == 2, "snax req with results", a, b)
	local ok, err = pcall(unique.req.fail, "on purpose")
	check(not ok and tostring(err):find("call failed", 1, true), "snax req that fails", err)
	check(unique.req.get() == 6, "snax serves after a failure")

	local addr = cluster.query("srv", "counter")
	local byaddr = cluster.snax("srv", "snax_counter", addr)
	byaddr.post.add(7)
	check(byaddr.req.get() == 7 and unique.req.get() == 6, "snax by address: another service")
	local byname = cluster.snax("srv", "snax_counter", "@counter")
	byname.post.add(1)
	check(byname.req.get() == 8 and byaddr.req.get() == 8, "snax by registered name")
	-- the object is bound to a local proxy; the service runs on srv
	local _, is_self, kind, name = byaddr.req.whoami()
	check(is_self == true and kind == "snax_counter" and name == "snax_counter"
		and byaddr.handle ~= addr and byaddr.type == "snax_counter",
		"snax object on a local proxy", is_self, kind, name)
	log("done")
end

skynet.start(function()
	local r = skynet.getenv "cmode_role"
	local ok, err = pcall(assert(role[r], r))
	if not ok then
		log("FAIL", r, err)
	end
end)
