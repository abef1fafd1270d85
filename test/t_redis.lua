-- skynet.db.redis against real redis-server processes started by the Rust
-- test (node/tests/redis.rs) on loopback: env redis_port is a plain server,
-- redis_auth_port one with requirepass "sekret" that the Rust side kills
-- with SIGKILL once a BLPOP of ours is blocked there. Malformed replies come
-- from a fake server in this service. Each case logs what it saw.
local skynet = require "skynet"
local socket = require "skynet.socket"
local redis = require "skynet.db.redis"
require "skynet.manager"

local function log(...)
	skynet.error("t_redis:", ...)
end

local PORT = assert(tonumber(skynet.getenv "redis_port"), "redis_port")
local AUTH_PORT = assert(tonumber(skynet.getenv "redis_auth_port"), "redis_auth_port")
local HOST = "127.0.0.1"

local function errtext(err)
	return (tostring(err):gsub("^.-:%d+: ", ""))
end

-- Runs f; returns "ok" or the error's text (without a file:line prefix).
local function outcome(f, ...)
	local ok, err = pcall(f, ...)
	if ok then
		return "ok"
	end
	return errtext(err)
end

local function join(t, n)
	local out = {}
	for i = 1, n or #t do
		out[i] = tostring(t[i])
	end
	return table.concat(out, ",")
end

local cases = {}

function cases.basic()
	local db = redis.connect { host = HOST, port = PORT, db = 0 }
	db:flushall()
	log("set", db:set("k", "v"))
	log("get", db:get "k")
	log("get missing", tostring(db:get "nope"))
	local bin = "a\r\nb\0c$3\r\n"
	db:set("bin", bin)
	log("binary", db:get "bin" == bin, #db:get "bin")
	local big = string.rep("x", 200000)
	db:set("big", big)
	log("big", db:get "big" == big)
	local n = db:incr "n"
	log("incr", n, math.type(n))
	log("incrby", db:incrby("n", 41))
	log("negative", db:decrby("m", 7))
	log("exists", db:exists "k", db:exists "nope")
	db:sadd("s", "one")
	log("sismember", db:sismember("s", "one"), db:sismember("s", "two"))
	db:rpush("l", "a", "b", "c")
	log("lrange", join(db:lrange("l", 0, -1)))
	db:hmset("h", "f1", "v1", "f2", "v2")
	db:hmset { "h", "f3", "v3" }
	log("hget", db:hget("h", "f3"), db:hlen "h")
	local mg = db:mget("k", "nope", "n")
	log("mget", mg[1], tostring(mg[2]), mg[3])
	local nested = db:eval("return {1, {'two', {3, 'four'}}, 'five'}", 0)
	log("nested", nested[1], nested[2][1], nested[2][2][1], nested[2][2][2], nested[3])
	log("empty array", type(db:lrange("nolist", 0, -1)), #db:lrange("nolist", 0, -1))
	db:multi()
	db:get "k"
	db:incr "n"
	local t = db:exec()
	log("exec", join(t))
	log("ping", db:ping())
	-- 500000 arguments through table.unpack, as skynet's testredis2 does
	local wide = {}
	for i = 1, 250000 do
		wide[2 * i - 1] = "f" .. i
		wide[2 * i] = i
	end
	log("wide hmset", db:hmset("wide", table.unpack(wide)), db:hlen "wide", db:hget("wide", "f250000"))
	table.insert(wide, 1, "wide2")
	log("wide hmset list", db:hmset(wide), db:hlen "wide2")
	db:disconnect()
end

function cases.errors()
	local db = redis.connect { host = HOST, port = PORT }
	db:set("str", "abc")
	log("error incr", outcome(db.incr, db, "str"))
	log("error unknown", outcome(db.nosuchcommand, db, "x"))
	log("error wrongtype", outcome(db.lpush, db, "str", "x"))
	log("error nil arg", outcome(db.set, db, "k", nil))
	log("after errors", db:get "str")
	-- an array holding an error is raised as that array (skynet's rule)
	db:multi()
	db:set("str", "abc")
	db:incr "str"
	local ok, arr = pcall(db.exec, db)
	log("exec with error", ok, type(arr), arr[1], arr[2])
	db:disconnect()
end

function cases.select()
	local db0 = redis.connect { host = HOST, port = PORT, db = 0 }
	local db1 = redis.connect { host = HOST, port = PORT, db = 1 }
	db1:set("where", "one")
	db0:set("where", "zero")
	log("select", db0:get "where", db1:get "where")
	db0:select(1)
	log("select after", db0:get "where")
	log("select bad", outcome(db0.select, db0, 99999))
	db0:disconnect()
	db1:disconnect()
end

function cases.auth()
	local plain = redis.connect { host = HOST, port = AUTH_PORT }
	log("noauth", outcome(plain.get, plain, "x"))
	log("auth wrong", outcome(plain.auth, plain, "nope"))
	log("auth method", plain:auth "sekret", plain:set("x", "1"))
	plain:disconnect()
	local ok = pcall(redis.connect, { host = HOST, port = AUTH_PORT, auth = "wrong" })
	log("auth connect wrong", ok)
	local db = redis.connect { host = HOST, port = AUTH_PORT, auth = "sekret", db = 2 }
	db:set("x", "two")
	log("auth connect", db:get "x")
	db:disconnect()
	local u = redis.connect { host = HOST, port = AUTH_PORT, username = "default", auth = "sekret" }
	log("auth username", u:get "x")
	u:disconnect()
end

function cases.pipeline()
	local db = redis.connect { host = HOST, port = PORT }
	db:del "p"
	local last = db:pipeline {
		{ "set", "p", 10 },
		{ "incrby", "p", 5 },
		{ "get", "p" },
	}
	log("pipeline last", last)
	local resp = {}
	local r = db:pipeline({
		{ "incr", "p" },
		{ "hset", "p", "f", "v" }, -- wrong type
		{ "lrange", "nolist", 0, -1 },
		{ "get", "nope" },
	}, resp)
	log("pipeline resp", r == resp, #resp, resp[1].ok, resp[1].out, resp[2].ok, resp[2].out)
	log("pipeline resp tail", resp[3].ok, #resp[3].out, resp[4].ok, tostring(resp[4].out))
	log("pipeline error", outcome(db.pipeline, db, { { "get", "p" }, { "incr", "nolist", "x" } }))
	log("pipeline empty", outcome(db.pipeline, db, {}))
	log("pipeline after", db:get "p")
	db:disconnect()
end

local function wait_until(f)
	for _ = 1, 500 do
		if f() then
			return true
		end
		skynet.sleep(1)
	end
	return false
end

function cases.watch()
	local db = redis.connect { host = HOST, port = PORT }
	local w = redis.watch { host = HOST, port = PORT }
	local got = {}
	local reader_done = false
	skynet.fork(function()
		while true do
			local ok, msg, channel, pattern = pcall(w.message, w)
			if not ok then
				log("watch reader ended", tostring(msg) ~= "")
				break
			end
			got[#got + 1] = table.concat({ msg, channel, pattern }, " ")
		end
		reader_done = true
	end)
	w:subscribe("news", "sport")
	w:psubscribe "ev.*"
	log("watch subscribed", wait_until(function()
		local s = db:pubsub("NUMSUB", "news", "sport")
		return s[2] == 1 and s[4] == 1 and db:pubsub "NUMPAT" == 1
	end))
	log("watch publish", db:publish("news", "hello"), db:publish("ev.x", "world"), db:publish("sport", 42))
	wait_until(function()
		return #got >= 3
	end)
	log("watch got", table.concat(got, "|"))
	w:unsubscribe "news"
	w:punsubscribe "ev.*"
	log("watch unsubscribed", wait_until(function()
		local s = db:pubsub("NUMSUB", "news", "sport")
		return s[2] == 0 and s[4] == 1 and db:pubsub "NUMPAT" == 0
	end))
	db:publish("news", "lost")
	db:publish("sport", "kept")
	wait_until(function()
		return #got >= 4
	end)
	log("watch after unsubscribe", got[4], #got)
	w:disconnect()
	log("watch disconnect", wait_until(function()
		return reader_done
	end))
	db:disconnect()
end

-- A fake server: each connection gets the next scripted reply to its first
-- request, then stays open (or closes if the script says so).
function cases.malformed()
	local script = {
		{ "+OK\r\n" },
		{ "?what\r\n" },
		{ "$abc\r\n" },
		{ "$3\r\nabcd\r\n" },
		{ "$-5\r\n" },
		{ ":12x\r\n" },
		{ "*2\r\n:1\r\n!x\r\n" },
		{ "\r\n" },
		{ "$99999999999\r\n" },
		{ string.rep("*1\r\n", 300) .. ":1\r\n" },
		{ "$10\r\nabc", close = true },
		{ "*3\r\n:1\r\n", close = true },
		{ "*-2\r\n" },
		{ "*-1\r\n" },
	}
	local id, _, port = socket.listen(HOST, 0)
	local next_case = 0
	socket.start(id, function(fd)
		next_case = next_case + 1
		local step = script[next_case]
		skynet.fork(function()
			socket.start(fd)
			socket.read(fd)	-- whatever the request was
			socket.write(fd, step[1])
			if step.close then
				socket.close(fd)
			end
		end)
	end)
	for i = 1, #script do
		local db = redis.connect { host = HOST, port = port }
		local t0 = skynet.now()
		local ok, err = pcall(db.get, db, "x")
		log("malformed " .. i, ok, ok and tostring(err) or errtext(err), skynet.now() - t0 < 300)
		db:disconnect()
	end
	socket.close(id)
end

-- The Rust test SIGKILLs the auth server once our BLPOP is blocked there.
function cases.kill()
	local db = redis.connect { host = HOST, port = AUTH_PORT, auth = "sekret" }
	local w = redis.watch { host = HOST, port = AUTH_PORT, auth = "sekret" }
	w:subscribe "never"
	log("kill warmup", db:ping())
	local results = {}
	local t0 = skynet.now()
	local function track(name, f, ...)
		local args = table.pack(...)
		skynet.fork(function()
			local ok, err = pcall(f, table.unpack(args, 1, args.n))
			results[name] = { ok = ok, err = err, at = skynet.now() - t0 }
		end)
	end
	track("blpop", db.blpop, db, "never", 0)
	track("queued", db.get, db, "x")	-- behind the BLPOP on the same link
	track("watch", w.message, w)
	log("kill blocked")	-- the Rust side waits for blocked_clients:1
	local done = wait_until(function()
		return results.blpop and results.queued and results.watch
	end)
	log("kill all failed", done, results.blpop and results.blpop.ok, results.queued and results.queued.ok,
		results.watch and results.watch.ok)
	if done then
		-- from the BLPOP's send: the Rust side polls every 20 ms, then kills
		local worst = math.max(results.blpop.at, results.queued.at, results.watch.at)
		log("kill error", tostring(results.blpop.err), worst < 300)
	end
	local t1 = skynet.now()
	local ok = pcall(db.get, db, "x")
	log("kill after", ok, skynet.now() - t1 < 300)
	db:disconnect()
	w:disconnect()
end

local order = { "basic", "errors", "select", "auth", "pipeline", "watch", "malformed", "kill" }

require "cases"(cases, order, log, 4000)
