-- skynet.dns: an asynchronous DNS resolver over UDP (skynet.socket).
--
-- dns.server([address [, port]]) chooses the name server (default: the
-- first "nameserver" of dns.DEFAULT_RESOLV_CONF, port 53).
-- dns.resolve(name [, ipv6]) -> address, all addresses: an IP address is
-- given back as is; a host name is looked up in dns.DEFAULT_HOSTS, then in
-- the cache, then asked for (A, or AAAA when ipv6). Returns nil, err for an
-- illegal name; raises "timeout or no answer (name)" when the server does
-- not answer within dns.timeout (1/100 s, default 30 s) or has no address.
-- dns.flush() empties the cache.
--
-- Answers are checked before use: a packet that is not a well-formed
-- answer to a pending question is logged and dropped.
local skynet = require "skynet"
local socket = require "skynet.socket"

local format, pack, unpack = string.format, string.pack, string.unpack
local concat = table.concat
local pcall, error, pairs, tostring = pcall, error, pairs, tostring

local MAX_NAME_LEN = 253
local MAX_LABEL_LEN = 63
local MAX_POINTERS = 32	-- name compression jumps allowed in one name
local SERVER_RETIRE = 60 * 100	-- an idle server socket closes after this

local QTYPE_A, QTYPE_AAAA = 1, 28
local QCLASS_IN = 1

local dns = {}

dns.DEFAULT_HOSTS = "/etc/hosts"
dns.DEFAULT_RESOLV_CONF = "/etc/resolv.conf"
dns.timeout = 30 * 100

local cache	-- qtype -> name -> { answers = {...}, expire = skynet.now() }
local pending = {}	-- tid -> the request waiting for it
local hosts	-- name -> { ipv4 = {...}, ipv6 = {...} }, read once per path
local hosts_path
local server = { address = nil, port = 53, fd = nil, used = 0 }

function dns.flush()
	cache = { [QTYPE_A] = {}, [QTYPE_AAAA] = {} }
end

dns.flush()

-- "ipv4", "ipv6" or "hostname"
local function name_kind(name)
	if name:match "^[%d%.]+$" then
		return "ipv4"
	elseif name:find(":", 1, true) then
		return "ipv6"
	end
	return "hostname"
end

local function read_hosts()
	local path = dns.DEFAULT_HOSTS
	local f = path and io.open(path)
	if not f then
		return {}
	end
	local t = {}
	for line in f:lines() do
		local ip, names = line:match "^%s*([%x%.:%[%]]+)%s+([^#;]+)"
		local kind = ip and name_kind(ip)
		if kind and kind ~= "hostname" then
			for each in names:gmatch "%S+" do
				local n = each:lower()
				local rt = t[n]
				if not rt then
					rt = {}
					t[n] = rt
				end
				local list = rt[kind]
				if not list then
					list = {}
					rt[kind] = list
				end
				list[#list + 1] = ip
			end
		end
	end
	f:close()
	return t
end

local function read_resolv_conf()
	local path = dns.DEFAULT_RESOLV_CONF
	local f = path and io.open(path)
	if not f then
		return nil
	end
	local found
	for line in f:lines() do
		found = line:match "^%s*nameserver%s+([^#;%s]+)"
		if found then
			break
		end
	end
	f:close()
	return found
end

local function valid_name(name)
	if #name > MAX_NAME_LEN or not name:match "^[_%l%d%-%.]+$" then
		return false
	end
	local labels = name:gsub("%.$", "")
	for label in (labels .. "."):gmatch "([^.]*)%." do
		if #label == 0 or #label > MAX_LABEL_LEN then
			return false
		end
	end
	return true
end

---------------------------------------------------------------- packets

local next_tid = 1
local function new_tid()
	for _ = 1, 65535 do
		local tid = next_tid
		next_tid = next_tid % 65535 + 1
		if not pending[tid] then
			return tid
		end
	end
	error "dns: too many pending queries"
end

local function query_packet(tid, name, qtype)
	local out = { pack(">I2I2I2I2I2I2", tid, 0x0100, 1, 0, 0, 0) }	-- RD
	for label in name:gmatch "[^.]+" do
		out[#out + 1] = pack("s1", label)
	end
	out[#out + 1] = pack(">BI2I2", 0, qtype, QCLASS_IN)
	return concat(out)
end

-- A (possibly compressed) name at `pos` (1-based) -> name, position after it.
local function read_name(pkt, pos)
	local labels = {}
	local after
	local jumps = 0
	local len = #pkt
	while true do
		if pos > len then
			error("name past the end", 0)
		end
		local tag = pkt:byte(pos)
		if tag & 0xc0 == 0xc0 then
			if pos + 1 > len then
				error("pointer past the end", 0)
			end
			jumps = jumps + 1
			if jumps > MAX_POINTERS then
				error("name pointer loop", 0)
			end
			after = after or pos + 2
			pos = ((tag & 0x3f) << 8 | pkt:byte(pos + 1)) + 1
		elseif tag & 0xc0 ~= 0 then
			error("bad label type", 0)
		elseif tag == 0 then
			return concat(labels, "."):lower(), after or pos + 1
		else
			if pos + tag > len then
				error("label past the end", 0)
			end
			labels[#labels + 1] = pkt:sub(pos + 1, pos + tag)
			pos = pos + tag + 1
		end
	end
end

local function address_text(atype, rdata)
	if atype == QTYPE_A and #rdata == 4 then
		return format("%d.%d.%d.%d", rdata:byte(1, 4))
	elseif atype == QTYPE_AAAA and #rdata == 16 then
		return format("%x:%x:%x:%x:%x:%x:%x:%x", unpack(">I2I2I2I2I2I2I2I2", rdata))
	end
	error("bad address length", 0)
end

-- An answer packet -> tid, rcode, question name, question type,
-- { [qtype] = { addresses..., ttl = least ttl } }. Raises when malformed.
local function parse_answer(pkt)
	if #pkt < 12 then
		error("short packet", 0)
	end
	local tid, flags, qdcount, ancount, _, _, pos = unpack(">I2I2I2I2I2I2", pkt)
	if flags & 0x8000 == 0 then
		error("not an answer", 0)
	end
	if qdcount ~= 1 then
		error("malformed packet", 0)
	end
	local qname
	qname, pos = read_name(pkt, pos)
	local qtype
	qtype, _, pos = unpack(">I2I2", pkt, pos)
	local found = {}
	for _ = 1, ancount do
		local atype, ttl, rdata, skipped
		skipped, pos = read_name(pkt, pos)
		atype, skipped, ttl, rdata, pos = unpack(">I2I2I4s2", pkt, pos)
		if atype == QTYPE_A or atype == QTYPE_AAAA then
			local list = found[atype]
			if not list then
				list = { ttl = ttl }
				found[atype] = list
			end
			list[#list + 1] = address_text(atype, rdata)
			if ttl < list.ttl then
				list.ttl = ttl
			end
		end
	end
	return tid, flags & 0x0f, qname, qtype, found
end

local function on_packet(pkt)
	local ok, tid, rcode, qname, qtype, found = pcall(parse_answer, pkt)
	if not ok then
		skynet.error("Recv an invalid package when dns query: " .. tostring(tid):gsub("^.-:%d+: ", ""))
		return
	end
	local req = pending[tid]
	if not req then
		return	-- timed out already, or not ours
	end
	if req.name ~= qname or req.qtype ~= qtype then
		skynet.error("Recv an invalid name when dns query")
		return
	end
	-- only an answer to a pending question fills the cache
	local now = skynet.now()
	for atype, list in pairs(found) do
		local ttl = list.ttl
		list.ttl = nil
		cache[atype][qname] = { answers = list, expire = now + ttl * 100 }
	end
	pending[tid] = nil
	req.answers = found[qtype]
	if not req.answers then
		req.why = rcode ~= 0 and format("rcode %d", rcode) or "no address"
	end
	skynet.wakeup(req.co)
end

---------------------------------------------------------------- server socket

local function close_server()
	local fd = server.fd
	if fd then
		server.fd = nil
		socket.close(fd)
		skynet.error(format("Udp server close %s:%s (%d)", server.address, server.port, fd))
	end
end

local function check_alive()
	if not server.fd then
		return
	end
	if skynet.now() > server.used + SERVER_RETIRE then
		close_server()
	else
		skynet.timeout(2 * SERVER_RETIRE, check_alive)
	end
end

local function open_server()
	if not server.address then
		server.address = read_resolv_conf()
		server.port = 53
	end
	if not server.address then
		error "Call dns.server first"
	end
	local fd = socket.udp(on_packet)
	local ok, err = pcall(socket.udp_connect, fd, server.address, server.port)
	if not ok then
		socket.close(fd)
		error(err)
	end
	server.fd = fd
	skynet.error(format("Udp server open %s:%s (%d)", server.address, server.port, fd))
	skynet.timeout(2 * SERVER_RETIRE, check_alive)
end

function dns.server(address, port)
	close_server()
	server.address = address
	server.port = port or 53
end

---------------------------------------------------------------- resolve

local function from_cache(name, qtype, stale_ok)
	local r = cache[qtype][name]
	if r and (stale_ok or r.expire > skynet.now()) then
		return r.answers
	end
end

local function ask(name, qtype)
	local answers = from_cache(name, qtype)
	if answers then
		return answers[1], answers
	end
	server.used = skynet.now()
	if not server.fd then
		open_server()
	end
	local tid = new_tid()
	local req = { name = name, qtype = qtype, co = coroutine.running() }
	pending[tid] = req
	socket.write(server.fd, query_packet(tid, name, qtype))
	skynet.timeout(dns.timeout, function()
		if pending[tid] == req then
			pending[tid] = nil
			req.why = "timeout"
			skynet.error(format("DNS query %s timeout", name))
			skynet.wakeup(req.co)
		end
	end)
	skynet.wait(req.co)
	answers = req.answers or from_cache(name, qtype, true)
	if not answers then
		error(format("timeout or no answer (%s: %s)", name, req.why))
	end
	return answers[1], answers
end

function dns.resolve(name, ipv6)
	name = name:lower()
	local kind = name_kind(name)
	if kind ~= "hostname" then
		if (ipv6 and kind == "ipv4") or (not ipv6 and kind == "ipv6") then
			return nil, "illegal ip address"
		end
		return name
	end
	if not valid_name(name) then
		return nil, "illegal name"
	end
	name = name:gsub("%.$", "")
	if hosts_path ~= dns.DEFAULT_HOSTS or not hosts then
		hosts_path = dns.DEFAULT_HOSTS
		hosts = read_hosts()
	end
	local local_entry = hosts[name]
	local list = local_entry and local_entry[ipv6 and "ipv6" or "ipv4"]
	if list then
		return list[1], list
	end
	return ask(name, ipv6 and QTYPE_AAAA or QTYPE_A)
end

return dns
