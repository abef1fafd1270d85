-- Talks to a C skynet cluster node (test/c_skynet/c_cluster_main.lua, port
-- in config "cport") with packets of our skynet.cluster.core and reads its
-- replies: a name query, calls by name and by address, a trace tag, a
-- multipart request and reply, pushes, an error, an unknown name.
-- Lines start with "t_cluster_c:"; the last one is "t_cluster_c: done".
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local cluster = require "skynet.cluster.core"

local function log(...)
	skynet.error("t_cluster_c:", ...)
end

local fd

-- One whole reply (a single packet, or a begin and its pieces).
local function reply()
	local acc
	while true do
		local h = assert(socket.read(fd, 2), "closed")
		local body = assert(socket.read(fd, h:byte(1) * 256 + h:byte(2)), "closed")
		local session, ok, data, padding = cluster.unpackresponse(body)
		if padding then
			acc = acc or {}
			acc[#acc + 1] = data
		elseif acc then
			acc[#acc + 1] = data
			local m, sz = cluster.concat(acc)
			return session, ok, skynet.unpack(m, sz)
		elseif ok then
			return session, ok, skynet.unpack(data)
		else
			return session, ok, data
		end
	end
end

local function send(req, pieces)
	socket.write(fd, req)
	for _, p in ipairs(pieces or {}) do
		socket.write(fd, p)
	end
end

local function run()
	fd = assert(socket.open("127.0.0.1", tonumber(skynet.getenv "cport")))
	local session = 1
	local req, pieces
	req, session = cluster.packrequest(0, session, skynet.pack("echo"))
	send(req)
	local s, ok, handle = reply()
	log("query", s, ok, math.type(handle))
	req, session = cluster.packrequest("@echo", session, skynet.pack("hi", 1))
	send(req)
	log("by name", reply())
	req, session = cluster.packrequest(handle, session, skynet.pack("num", 2))
	send(cluster.packtrace("(ours)trace:1"))
	send(req)
	log("by address after a trace tag", reply())
	local big = string.rep("0123456789", 10000)
	req, session, pieces = cluster.packrequest("@echo", session, skynet.pack(big))
	send(req, pieces)
	local s2, ok2, e, c = reply()
	log("multipart", s2, ok2, e, c == big, #pieces)
	send((cluster.packpush("@echo", session, skynet.pack("push", "small"))))
	req, session, pieces = cluster.packpush(handle, session, skynet.pack("push", big))
	send(req, pieces)
	req, session = cluster.packrequest("@echo", session, skynet.pack("pushes"))
	send(req)
	log("pushes", reply())
	req, session = cluster.packrequest("@echo", session, skynet.pack("fail"))
	send(req)
	local s3, ok3 = reply()
	log("error", s3, ok3)
	req, session = cluster.packrequest("@nope", session, skynet.pack("x"))
	send(req)
	log("unknown name", reply())
end

skynet.start(function()
	local ok, e = pcall(run)
	if not ok then
		log("FAIL", e)
	end
	log("done")
	skynet.abort()
end)
