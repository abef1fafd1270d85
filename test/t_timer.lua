-- Timeouts in bulk: never early, each service's in deadline order (equal
-- delays in registration order), all delivered once, from several services
-- at a time; TIMEOUT through core.intcommand with odd arguments.
-- Every line it prints starts with "t_timer:"; the last one is "t_timer: done".
local skynet = require "skynet"
require "skynet.manager"
local core = require "skynet.core"

local mode = ...

-- Registers n timeouts with delays 1..span ticks, in batches with yields.
-- Returns (fired, early, out_of_order, duplicates) once all have fired.
local function stream(n, span, batch)
	local fired, early, disorder, dup = 0, 0, 0, 0
	local last_seq = {}	-- per delay: sequence number of the last one fired
	local seen = {}
	local done = {}
	for i = 1, n do
		local ti = 1 + (i * 7) % span
		local requested = skynet.hpc() + ti * 10000000
		skynet.timeout(ti, function()
			if skynet.hpc() < requested then early = early + 1 end
			if seen[i] then dup = dup + 1 end
			seen[i] = true
			if (last_seq[ti] or 0) > i then disorder = disorder + 1 end
			last_seq[ti] = i
			fired = fired + 1
			if fired == n then skynet.wakeup(done) end
		end)
		if i % batch == 0 then skynet.yield() end
	end
	if fired < n then skynet.wait(done) end
	return fired, early, disorder, dup
end

if mode == "peer" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, n, span, batch)
			skynet.retpack(stream(n, span, batch))
		end)
	end)
	return
end

skynet.start(function()
	local fired, early, disorder, dup = stream(3000, 30, 300)
	skynet.error(string.format("t_timer: stream fired %d early %d out of order %d twice %d",
		fired, early, disorder, dup))

	-- Three services at once: the timer thread's batches mix their timeouts.
	local peers = {}
	for i = 1, 2 do peers[i] = skynet.newservice("t_timer", "peer") end
	local results = {}
	local left, all = 3, {}
	for i = 1, 2 do
		skynet.fork(function()
			results[i] = table.pack(skynet.call(peers[i], "lua", 2000, 20, 200))
			left = left - 1
			if left == 0 then skynet.wakeup(all) end
		end)
	end
	skynet.fork(function()
		results[3] = table.pack(stream(2000, 20, 200))
		left = left - 1
		if left == 0 then skynet.wakeup(all) end
	end)
	skynet.wait(all)
	for i = 1, 3 do
		local r = results[i]
		skynet.error(string.format("t_timer: service %d fired %d early %d out of order %d twice %d",
			i, r[1], r[2], r[3], r[4]))
	end

	-- TIMEOUT by intcommand: a numeric string is a number, a fraction is an error.
	local s = core.intcommand("TIMEOUT", "2")
	skynet.error("t_timer: string delay gives a session " .. tostring(math.type(s) == "integer" and s > 0))
	local ok, err = pcall(core.intcommand, "TIMEOUT", 1.5)
	skynet.error("t_timer: fractional delay " .. tostring(ok) .. " " ..
		tostring(err:find("number has no integer representation", 1, true) ~= nil))
	skynet.error("t_timer: done")
	skynet.abort()
end)
