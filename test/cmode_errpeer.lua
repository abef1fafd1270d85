-- cmode_errpeer: a cluster peer whose handler errors carry their own text,
-- for the 32 KiB error cut of integration-tests/tests/cluster_mode.rs.
--
-- skynet's clusteragent answers a failed call with the text of its pcall
-- error; a handler's own error never gets there (skynet.call raises "call
-- failed"), so a long error text needs a peer like this one: it serves the
-- cluster wire format on 127.0.0.1:<port> (netpack frames, requests decoded
-- by skynet.cluster.core.unpackrequest) and answers each call by running its
-- handler under pcall and packing the result, or the error text, with
-- skynet.cluster.core.packresponse, as clusteragent does.
--
-- Handler: ("fail", n) raises text(n), an n-byte text of 8-digit positions;
-- ("text", n) returns it; ("echo", ...) returns its arguments.
local skynet = require "skynet"
local socket = require "skynet.socket"
local cluster = require "skynet.cluster.core"

local port = assert(tonumber((...)), "cmode_errpeer needs a port")

local function errtext(n)
	local parts = {}
	for i = 0, n // 8 do
		parts[#parts + 1] = string.format("%08d", i * 8)
	end
	return table.concat(parts):sub(1, n)
end

local handler = {}
function handler.fail(n)
	error(errtext(n), 0)
end
function handler.text(n)
	return errtext(n)
end
function handler.echo(...)
	return ...
end

local function answer(fd, body)
	local addr, session, msg, sz = cluster.unpackrequest(body)
	if not msg then
		return	-- a trace tag or a multipart piece: not used by the tests
	end
	local args = table.pack(pcall(skynet.unpack, msg, sz))
	skynet.trash(msg, sz)
	if session == 0 or addr == nil then
		return	-- a push: nothing to answer
	end
	local r
	if args[1] and handler[args[2]] then
		r = table.pack(pcall(handler[args[2]], table.unpack(args, 3, args.n)))
	else
		r = { false, "cmode_errpeer: bad request", n = 2 }
	end
	local packet
	if r[1] then
		packet = cluster.packresponse(session, true, skynet.packstring(table.unpack(r, 2, r.n)))
	else
		packet = cluster.packresponse(session, false, tostring(r[2]))
	end
	-- a long ok reply is a list of packets: one write for all of them
	socket.write(fd, type(packet) == "table" and table.concat(packet) or packet)
end

local function serve(fd)
	socket.start(fd)
	while true do
		local head = socket.read(fd, 2)
		local body = head and socket.read(fd, string.unpack(">I2", head))
		if not body then
			break
		end
		answer(fd, body)
	end
	socket.close(fd)
end

skynet.start(function()
	local id = socket.listen("127.0.0.1", port)
	socket.start(id, function(fd)
		skynet.fork(serve, fd)
	end)
end)
