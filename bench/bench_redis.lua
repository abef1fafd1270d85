-- skynet.db.redis benchmark: SET and GET round trips to the redis-server
-- that skynet-bench started on 127.0.0.1:<bench_redis_port>, with one caller,
-- with 16 callers (16 coroutines sharing one connection, then 16 connections
-- with one coroutine each), and pipelines of 100 commands per round trip.
-- Prints "BENCH <name> <rate> <unit>" lines, then aborts the node.
local skynet = require "skynet"
require "skynet.manager"	-- skynet.abort
local redis = require "skynet.db.redis"
local util = require "bench_util"
local report = util.report

local PORT = assert(tonumber(skynet.getenv "bench_redis_port"), "bench_redis_port is not set")
local VALUE = string.rep("v", 16)
local KEYS = 1000	-- keys per caller, reused round robin

local function connect()
	return redis.connect { host = "127.0.0.1", port = PORT }
end

-- One coroutine per entry of `dbs` (a connection each, possibly the same
-- one), each making `per` calls of one(db, caller, i): calls per second.
local function run(dbs, per, one)
	return util.run(#dbs, per, function(c, i)
		one(dbs[c], c, i)
	end)
end

local function set_one(db, c, i)
	local r = db:set("bench:" .. c .. ":" .. i % KEYS, VALUE)
	if r ~= "OK" then
		error("SET answered " .. tostring(r))
	end
end

local function get_one(db, c, i)
	local v = db:get("bench:" .. c .. ":" .. i % KEYS)
	if v ~= VALUE then
		error("GET answered " .. tostring(v))
	end
end

-- SET then GET with `dbs` callers, `n` calls in all for each.
local function set_get(name, dbs, n)
	report("redis_set_" .. name, run(dbs, n // #dbs, set_one), "calls/s")
	report("redis_get_" .. name, run(dbs, n // #dbs, get_one), "calls/s")
end

local PIPE = 100

local function pipeline(db, cmd)
	local ops = {}
	for i = 1, PIPE do
		ops[i] = cmd == "set" and { "set", "bench:1:" .. i, VALUE } or { "get", "bench:1:" .. i }
	end
	local resp = {}
	return function()
		for i = #resp, 1, -1 do
			resp[i] = nil
		end
		db:pipeline(ops, resp)
		if #resp ~= PIPE or not resp[PIPE].ok then
			error(cmd .. " pipeline answered " .. #resp .. " replies")
		end
		local last = resp[PIPE].out
		if last ~= (cmd == "set" and "OK" or VALUE) then
			error(cmd .. " pipeline: last reply " .. tostring(last))
		end
	end
end

skynet.start(function()
	local ok, err = pcall(function()
		local db = connect()
		run({ db }, 2000, set_one)	-- warm up, and the keys GET reads
		set_get("sequential", { db }, 30000)

		local shared = {}
		for c = 1, 16 do
			shared[c] = db
		end
		set_get("concurrent_16", shared, 100000)

		local own = {}
		for c = 1, 16 do
			own[c] = connect()
		end
		set_get("16_connections", own, 100000)
		for _, d in ipairs(own) do
			d:disconnect()
		end

		for _, cmd in ipairs { "set", "get" } do
			local one = pipeline(db, cmd)
			local rounds = 2000
			local rate = run({ db }, rounds, one)
			report("redis_pipeline_100_" .. cmd, rate * PIPE, "commands/s")
			report("redis_pipeline_100_" .. cmd .. "_rt", rate, "round-trips/s")
		end
		db:disconnect()
	end)
	if not ok then
		skynet.error("BENCH FAILED bench_redis: " .. tostring(err))
	end
	skynet.abort()
end)
