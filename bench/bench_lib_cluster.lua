-- skynet.cluster.core benchmark: a small request packed and unpacked
-- (packrequest + unpackrequest, as clustersender and clusteragent do it) per
-- second, and a 100 KB request or reply through its multipart pieces
-- (pack, unpack of each piece, append + concat) in MB/s.
local skynet = require "skynet"
require "skynet.manager"
local cluster = require "skynet.cluster.core"
local driver = require "skynet.socketdriver"

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.1f %s", name, value, unit))
end

local function rate(n, f)
	f()
	local t0 = skynet.hpc()
	for _ = 1, n do
		f()
	end
	return n / ((skynet.hpc() - t0) / 1e9)
end

-- The receiving side of one request: each packet without its size prefix.
local function receive(packets)
	local large
	for _, pk in ipairs(packets) do
		local _, _, msg, sz, padding = cluster.unpackrequest(pk:sub(3))
		if padding then
			large = large or {}
			cluster.append(large, msg, sz)
		elseif large then
			cluster.append(large, msg, sz)
			msg, sz = cluster.concat(large)
			skynet.trash(msg, sz)
		else
			skynet.trash(msg, sz)
		end
	end
end

skynet.start(function()
	local small = skynet.packstring("GET", "some_key")
	local session = 1
	report("cluster_request_small", rate(300000, function()
		local p, sz = driver.str2p(small)
		local req
		req, session = cluster.packrequest("@db", session, p, sz)
		local _, _, msg, msz = cluster.unpackrequest(req:sub(3))
		skynet.trash(msg, msz)
	end), "ops/s")

	local big = string.rep("0123456789abcdef", 6250)	-- 100 KB
	local mb = #big / 1e6
	local packets = {}
	report("cluster_request_100k", rate(2000, function()
		local p, sz = driver.str2p(big)
		local req, pieces
		req, session, pieces = cluster.packrequest(9, session, p, sz)
		packets[1] = req
		for i, x in ipairs(pieces) do packets[i + 1] = x end
		receive(packets)
	end) * mb, "MB/s")

	report("cluster_response_100k", rate(2000, function()
		local parts = cluster.packresponse(7, true, big)
		local acc = {}
		for i, pk in ipairs(parts) do
			local _, _, data = cluster.unpackresponse(pk:sub(3))
			acc[i] = data
		end
		local msg, sz = cluster.concat(acc)
		skynet.trash(msg, sz)
	end) * mb, "MB/s")
	skynet.sleep(10)	-- let the logger write the lines out
	skynet.abort()
end)
