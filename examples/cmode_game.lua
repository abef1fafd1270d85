-- cmode_game: the calling node of the cluster-mode compose example
-- (deploy/docker-compose.cluster.yml). Twice a second it stores a counter
-- in db's "sdb" and reads it back, logging only changes:
--
--   cmode: db up (call <n>)           the first call that worked after a failure
--   cmode: ok <n> calls               every 20th good round
--   cmode: db down in <ms> ms: <err>  the first failed call (the error names why)
--   cmode: FAIL <what>                a wrong answer
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local function now_ms()
	return skynet.hpc() // 1000000
end

skynet.start(function()
	skynet.error("cmode: game calls db")
	local up, n, good = nil, 0, 0
	while true do
		n = n + 1
		local t0 = now_ms()
		local ok, err = pcall(function()
			cluster.call("db", "@sdb", "SET", "counter", n)
			local v = cluster.call("db", "@sdb", "GET", "counter")
			if v ~= n then
				skynet.error(string.format("cmode: FAIL GET returned %s, not %d", tostring(v), n))
			end
		end)
		if ok then
			good = good + 1
			if up ~= true then
				skynet.error(string.format("cmode: db up (call %d)", n))
				up = true
			end
			if good % 20 == 0 then
				skynet.error(string.format("cmode: ok %d calls", good))
			end
		elseif up ~= false then
			skynet.error(string.format("cmode: db down in %d ms: %s", now_ms() - t0, tostring(err)))
			up = false
		end
		skynet.sleep(50)
	end
end)
