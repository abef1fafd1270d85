-- skynet.dns against a tiny DNS responder on 127.0.0.1 (UDP, port 0) in this
-- service: A and AAAA, several answers, compression, CNAME records skipped,
-- the cache and its ttl, flush, NXDOMAIN, a silent server (timeout),
-- malformed and mismatched packets dropped, a hosts file, illegal names,
-- and httpc resolving through httpc.dns.
local skynet = require "skynet"
local socket = require "skynet.socket"
local dns = require "skynet.dns"
local httpc = require "http.httpc"
local httpd = require "http.httpd"
local sockethelper = require "http.sockethelper"

local pack, unpack = string.pack, string.unpack

local function log(...)
	skynet.error("t_dns:", ...)
end

local queries = {}	-- name -> how many queries the responder got

local function encode_name(name)
	local out = {}
	for label in name:gmatch "[^.]+" do
		out[#out + 1] = pack("s1", label)
	end
	out[#out + 1] = "\0"
	return table.concat(out)
end

local function v4(ip)
	return pack("BBBB", ip:match "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
end

-- An answer to query `q` (its tid and question bytes) with records
-- { type, ttl, rdata [, name bytes] }; names default to a pointer to the question.
local function answer(tid, question, records, rcode, flags)
	local out = { pack(">I2I2I2I2I2I2", tid, flags or (0x8180 | (rcode or 0)), 1, #records, 0, 0), question }
	for _, r in ipairs(records) do
		out[#out + 1] = (r[4] or "\xc0\x0c") .. pack(">I2I2I4s2", r[1], 1, r[2], r[3])
	end
	return table.concat(out)
end

local function responder()
	local fd
	fd = socket.udp_listen("127.0.0.1", 0, function(pkt, from)
		local tid, _, _, _, _, _, pos = unpack(">I2I2I2I2I2I2", pkt)
		local labels = {}
		while true do
			local n = pkt:byte(pos)
			if n == 0 then
				break
			end
			labels[#labels + 1] = pkt:sub(pos + 1, pos + n)
			pos = pos + n + 1
		end
		local name = table.concat(labels, ".")
		local qtype = unpack(">I2", pkt, pos + 1)
		local question = pkt:sub(13, pos + 4)
		queries[name] = (queries[name] or 0) + 1
		local function reply(data)
			socket.sendto(fd, from, data)
		end
		if name == "web.test" and qtype == 1 then
			-- a CNAME first (skipped), then the address under the alias's name
			local alias = encode_name("alias.test")
			reply(answer(tid, question, {
				{ 5, 300, alias },
				{ 1, 60, v4 "127.0.0.1", alias },
			}))
		elseif name == "two.test" then
			reply(answer(tid, question, { { 1, 60, v4 "10.0.0.1" }, { 1, 30, v4 "10.0.0.2" } }))
		elseif name == "v6.test" and qtype == 28 then
			reply(answer(tid, question, { { 28, 60, ("\0"):rep(15) .. "\1" } }))
		elseif name == "short.test" then
			reply(answer(tid, question, { { 1, 1, v4 "10.1.1.1" } }))
		elseif name == "missing.test" then
			reply(answer(tid, question, {}, 3))
		elseif name == "noisy.test" then
			reply("garbage")	-- too short
			reply(answer(tid, question, { { 1, 60, v4 "10.9.9.9" } }, 0, 0x0100))	-- not an answer
			reply(answer(tid + 1, question, { { 1, 60, v4 "10.9.9.8" } }))	-- another tid
			reply(answer(tid, question, { { 1, 60, v4 "10.9.9.9" .. "\0" } }))	-- bad rdata length
			reply(answer(tid, question, { { 1, 60, v4 "10.2.2.2" } }))
		elseif name == "loop.test" then
			reply(answer(tid, question, { { 1, 60, v4 "10.3.3.3", "\xc0\x0c\xc0\x0c" } }))
			local self_loop = pkt:sub(1, 12):gsub("^(..)..", "%1\x81\x80") .. "\xc0\x0c"
			reply(self_loop)
		end
		-- silent.test: no answer at all
	end)
	for _, s in ipairs(socket.netstat()) do
		if s.id == fd then
			return tonumber(s.sock:match ":(%d+)$")
		end
	end
end

local function try(name, ipv6)
	local ok, ip, all = pcall(dns.resolve, name, ipv6)
	if not ok then
		return "error " .. tostring(ip)
	end
	if type(all) == "table" then
		return ip, table.concat(all, ",")
	end
	return ip, all
end

local function main()
	local port = responder()
	local hosts = os.tmpname()
	local f = assert(io.open(hosts, "w"))
	f:write("# test hosts\n10.7.7.7   local.test  other.test # comment\n::7 local.test\n")
	f:close()
	dns.DEFAULT_HOSTS = hosts
	dns.server("127.0.0.1", port)

	log("web", try("web.test"))
	log("web again", try("WEB.test"), queries["web.test"])
	dns.flush()
	log("web after flush", try("web.test"), queries["web.test"])
	log("two", try("two.test"))
	log("v6", try("v6.test", true))
	log("short", try("short.test"))
	skynet.sleep(120)
	log("short expired", try("short.test"), queries["short.test"])
	log("missing", try("missing.test"))
	log("noisy", try("noisy.test"))
	dns.timeout = 50
	log("silent", try("silent.test"))
	log("loop", try("loop.test"))
	log("hosts", try("local.test"))
	log("hosts v6", try("local.test", true))
	log("hosts alias", try("Other.Test"))
	log("ip", try("192.168.1.1"))
	log("ip v6 as v4", try("::1"))
	log("illegal", try("bad name!"))
	log("illegal label", try("a..b"))
	log("queries", queries["local.test"], queries["192.168.1.1"])
	os.remove(hosts)

	-- httpc through skynet.dns
	local id, _, hport = socket.listen("127.0.0.1", 0)
	socket.start(id, function(fd)
		skynet.fork(function()
			socket.start(fd)
			local code, _, _, header = httpd.read_request(sockethelper.readfunc(fd))
			httpd.write_response(sockethelper.writefunc(fd), code, "host " .. tostring(header and header.host))
			socket.close(fd)
		end)
	end)
	httpc.dns("127.0.0.1", port)
	local code, body = httpc.get("web.test:" .. hport, "/")
	log("httpc", code, body)
	local ok, err = pcall(httpc.get, "missing.test:" .. hport, "/")
	log("httpc missing", ok, tostring(err):match "timeout or no answer" ~= nil)
	socket.close(id)
end

require "sock_run"(log, main)
