-- ct_probe: the start service of every node in the container tests
-- (integration-tests/tests/containers.rs), started with
-- `--start "ct_probe H1 H2 ..."` (the harbor ids of the cluster).
--
-- It launches a ct_echo registered as the global name ECHO<own id> and
-- watches every other listed harbor h, logging only state changes (every
-- line starts with "ct: "):
--
--   ct: ready <own>
--   ct: ECHO<h> up (:<handle>, <ms> ms after start|after <ms> ms down)
--   ct: ECHO<h> ok (<n> calls, last in <ms> ms)   every 20th good call
--   ct: ECHO<h> down in <ms> ms: <error>     a call failed (or timed out)
--   ct: ECHO<h> still down (...)             every 10th failed call after that
--   ct: ECHO<h> pending failed <i>/<n>        a call that never answers failed
--   ct: ECHO<h> all pending failed            ... all of them
--   ct: FAIL <what>                           a wrong answer
--
-- Watching ECHO<h> means: one call `echo` every 100 ms (at most 5 s each),
-- one send `tick` every 100 ms (numbered 1, 2, ... whatever the calls did;
-- ct_echo checks their order), and while the target is up PENDING calls
-- `hang` that never answer, so that a lost node shows up as failed calls.
local skynet = require "skynet"
local harbor = require "skynet.harbor"
require "skynet.manager"

local PENDING = 3
local CALL_TIMEOUT = 500	-- centiseconds
local PERIOD = 10	-- centiseconds

local function log(fmt, ...)
	skynet.error("ct: " .. string.format(fmt, ...))
end

local function now_ms()
	return skynet.hpc() // 1000000
end

local harbors = { ... }

-- pcall(skynet.call, addr, "lua", ...), giving up after `cs` centiseconds:
-- returns false, "timeout" then (the call itself stays pending).
local function timed_call(cs, addr, ...)
	local token = {}
	local result
	local args = table.pack(...)
	skynet.fork(function()
		local r = table.pack(pcall(skynet.call, addr, "lua", table.unpack(args, 1, args.n)))
		if not result then
			result = r
			skynet.wakeup(token)
		end
	end)
	skynet.timeout(cs, function()
		if not result then
			result = { false, "timeout", n = 2 }
			skynet.wakeup(token)
		end
	end)
	skynet.wait(token)
	return table.unpack(result, 1, result.n)
end

local own
-- Tells this incarnation's ticks from an earlier one's (the monotonic clock
-- is the machine's, so a restarted node starts from another value).
local boot = tostring(skynet.hpc())

local function watch(h)
	local name = "ECHO" .. h
	local state = "unknown"	-- "up" | "down"
	local since = now_ms()
	local pending = 0	-- outstanding hang calls
	local failed = 0
	local seq = 0
	local good = 0	-- successful calls
	local bad = 0	-- failed calls since the "down" line

	local function arm()
		for _ = pending + 1, PENDING do
			pending = pending + 1
			skynet.fork(function()
				local ok, err = pcall(skynet.call, name, "lua", "hang")
				pending = pending - 1
				if ok then
					log("FAIL %s answered a hang call", name)
				else
					failed = failed + 1
					log("%s pending failed %d/%d: %s", name, failed, PENDING, tostring(err))
					if failed == PENDING then
						log("%s all pending failed", name)
					end
				end
			end)
		end
	end

	while true do
		seq = seq + 1
		local t0 = now_ms()
		local ok, r = timed_call(CALL_TIMEOUT, name, "echo", seq)
		local dt = now_ms() - t0
		if ok then
			if r ~= seq then
				log("FAIL %s echo %d returned %s", name, seq, tostring(r))
			end
			good = good + 1
			if good % 20 == 0 then
				log("%s ok (%d calls, last in %d ms)", name, good, dt)
			end
			if state ~= "up" then
				local h2 = harbor.queryname(name)
				if state == "unknown" then
					log("%s up (%s, %d ms after start)", name, skynet.address(h2), now_ms() - since)
				else
					log("%s up (%s, after %d ms down)", name, skynet.address(h2), now_ms() - since)
				end
				state = "up"
				since = now_ms()
				failed = 0
				arm()
			end
		elseif r == "timeout" and state == "unknown" then
			-- the name is not registered yet: the call waits for it
		else
			if state ~= "down" then
				log("%s down in %d ms: %s", name, dt, tostring(r))
				state = "down"
				since = now_ms()
				bad = 0
			else
				bad = bad + 1
				if bad % 10 == 0 then
					log("%s still down (%d more calls failed, the last in %d ms): %s",
						name, bad, dt, tostring(r))
				end
			end
		end
		skynet.send(name, "lua", "tick", seq, own, boot)
		skynet.sleep(PERIOD)
	end
end

skynet.start(function()
	own = skynet.harbor(skynet.self())
	skynet.newservice("ct_echo", "ECHO" .. own)
	log("ready %d", own)
	for _, a in ipairs(harbors) do
		local h = tonumber(a)
		if h and h ~= own then
			skynet.fork(watch, h)
		end
	end
end)
