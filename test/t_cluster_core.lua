-- skynet.cluster.core against the results C skynet gives for the same calls
-- (test/vectors/cluster.txt; its header describes the format), then what
-- vectors can't show: round trips through a clusteragent-style reassembly,
-- consumed blocks, malformed packets, nodename.
-- Lines start with "t_cluster_core:"; the last one is "t_cluster_core: done".
local skynet = require "skynet"
require "skynet.manager"
local cluster = require "skynet.cluster.core"
local driver = require "skynet.socketdriver"
local md5 = require "md5"

local function log(...)
	skynet.error("t_cluster_core:", ...)
end

local function tohex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function fromhex(h)
	return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

local function pattern(n, seed, off)
	local t = {}
	off = off or 0
	for i = off, off + n - 1 do
		t[#t + 1] = string.char((seed + i * 131 + (i >> 8)) & 0xff)
	end
	return table.concat(t)
end

local function str_of(tag, rest)
	if tag == "s" then return fromhex(rest) end
	if tag == "c" then
		local hex, n, seed, off = rest:match("^(%x*)%+(%d+):(%d+):(%d+)$")
		return fromhex(hex) .. pattern(tonumber(n), tonumber(seed), tonumber(off))
	end
	local n, seed = rest:match("^(%d+):(%d+)$")
	return pattern(tonumber(n), tonumber(seed))
end

-- Appends the values of one argument token to argv (a block is two).
local function decode_arg(tok, argv)
	local tag, rest = tok:sub(1, 1), tok:sub(2)
	local function put(v)
		argv.n = argv.n + 1
		argv[argv.n] = v
	end
	if tag == "i" then
		put(math.tointeger(tonumber(rest)))
	elseif tag == "f" then
		put(tonumber(rest) + 0.0)
	elseif tag == "s" or tag == "r" or tag == "c" then
		put(str_of(tag, rest))
	elseif tag == "n" then
		put(nil)
	elseif tag == "b" then
		put(rest == "1")
	elseif tag == "P" then
		put((driver.str2p(fromhex(rest))))
	elseif tag == "m" or tag == "M" then
		local p, sz = driver.str2p(tag == "m" and fromhex(rest) or str_of("r", rest))
		put(p)
		put(sz)
	elseif tag == "t" then
		local t = { n = 0 }
		for item in rest:gmatch("[^;]+") do
			decode_arg(item, t)
		end
		t.n = nil
		put(t)
	else
		error("bad token " .. tok)
	end
end

local function render_str(s)
	if #s <= 96 then
		return "s" .. tohex(s)
	end
	return "h" .. #s .. ":" .. md5.sumhexa(s) .. ":" .. tohex(s:sub(1, 16))
end

local function render(v, nextv)
	local t = type(v)
	if t == "nil" then return "n"
	elseif t == "boolean" then return v and "b1" or "b0"
	elseif t == "number" then
		if math.type(v) == "integer" then return "i" .. v end
		return "f" .. v
	elseif t == "string" then return render_str(v)
	elseif t == "userdata" then
		return "p" .. render_str(nextv == 0 and "" or skynet.tostring(v, nextv))
	elseif t == "table" then
		local items = {}
		for i = 1, #v do items[i] = render(v[i], v[i + 1]) end
		return "T" .. table.concat(items, ";")
	end
	error("cannot render " .. t)
end

local function strip(e)
	return (tostring(e):gsub("^[^:]*:%d+: ", ""))
end

-- Runs one call; "=" and the rendered results, or "!" and the error.
local function call(fname, args)
	local argv = { n = 0 }
	for tok in args:gmatch("[^,]+") do
		decode_arg(tok, argv)
	end
	local r = table.pack(pcall(cluster[fname], table.unpack(argv, 1, argv.n)))
	if not r[1] then
		return "!" .. strip(r[2])
	elseif fname == "append" then
		return "=" .. render(argv[1])
	end
	local items = {}
	for i = 2, r.n do
		items[#items + 1] = render(r[i], r[i + 1])
		if type(r[i]) == "userdata" then
			skynet.trash(r[i], r[i + 1])
		end
	end
	return "=" .. table.concat(items, ",")
end

local function run_vectors(path)
	local total, passed, shown, texts = 0, 0, 0, {}
	local function mismatch(...)
		if shown < 10 then
			shown = shown + 1
			log("MISMATCH", ...)
		end
	end
	for line in io.lines(path) do
		if line:sub(1, 1) ~= "#" then
			local fname, args, want, flag = line:match("^([^\t]+)\t([^\t]*)\t([^\t]*)\t?(.*)$")
			total = total + 1
			local got = call(fname, args)
			if flag == "strict" or want:sub(1, 1) == "!" and flag ~= "lenient" then
				-- an error; ours may name the problem more closely
				if got:sub(1, 1) == "!" then
					passed = passed + 1
					if got ~= want then
						texts[#texts + 1] = fname .. " " .. args:sub(1, 30) .. ": " .. got
					end
				else
					mismatch(fname, args:sub(1, 60), "want an error, got", got:sub(1, 80))
				end
			elseif flag == "lenient" then
				-- a string message packs as a block of the same bytes does
				local same = call(fname, args:gsub(",s(%x*),i%d+$", ",m%1"))
				if got == same and got:sub(1, 1) == "=" then
					passed = passed + 1
				else
					mismatch(fname, args, "got", got, "as a block", same)
				end
			elseif got == want then
				passed = passed + 1
			else
				mismatch(fname, args:sub(1, 60), "want", want:sub(1, 100), "got", got:sub(1, 100))
			end
		end
	end
	log("vectors", total, "passed", passed)
	for i, t in ipairs(texts) do
		if i <= 40 then log("error text", t) end
	end
end

-- Packs msg, unpacks every packet as clusteragent does (append + concat
-- for a multipart one) and returns what arrives.
local function round_trip(addr, bytes, push)
	local p, sz = driver.str2p(bytes)
	local req, nexts, pieces = (push and cluster.packpush or cluster.packrequest)(addr, 5, p, sz)
	local packets = { req }
	for _, x in ipairs(pieces or {}) do packets[#packets + 1] = x end
	local got = {}
	local large
	for _, pk in ipairs(packets) do
		assert(pk:byte(1) * 256 + pk:byte(2) == #pk - 2, "size prefix")
		local body = driver.str2p(pk:sub(3))
		local a, session, msg, msz, padding, is_push = cluster.unpackrequest(body, #pk - 2)
		skynet.trash(body, #pk - 2)
		if padding then
			large = large or { addr = a, push = is_push }
			cluster.append(large, msg, msz)
		elseif large then
			cluster.append(large, msg, msz)
			msg, msz = cluster.concat(large)
			got = { addr = large.addr, session = session, push = large.push,
				data = msz == 0 and "" or skynet.tostring(msg, msz) }
			skynet.trash(msg, msz)
		else
			got = { addr = a, session = session, push = is_push or false,
				data = msz == 0 and "" or skynet.tostring(msg, msz) }
			skynet.trash(msg, msz)
		end
	end
	return got, nexts, #packets
end

local function extra()
	-- round trips at the boundaries, by address and by name
	local fails, count = 0, 0
	for _, n in ipairs { 0, 1, 0x7fff, 0x8000, 0x8001, 0x10000, 0x10001, 300000 } do
		for _, addr in ipairs { 9, "@svc" } do
			for _, push in ipairs { false, true } do
				local bytes = pattern(n, n % 251)
				local got = round_trip(addr, bytes, push)
				count = count + 1
				local want_session = (push and n < 0x8000) and 0 or 5
				if got.data ~= bytes or got.addr ~= addr or got.session ~= want_session
					or (got.push and true or false) ~= push then
					fails = fails + 1
					log("ROUND TRIP FAIL", n, addr, push, #got.data, got.addr, got.session)
				end
			end
		end
	end
	log("round trips", count, "failed", fails)
	local _, _, packets = round_trip(1, pattern(100000, 1))
	log("100000 bytes in packets", packets)

	-- replies: reassembled as clustersender's socketchannel does
	local reply = pattern(100001, 7)
	local parts = cluster.packresponse(77, true, reply)
	local acc, ok_all = {}, true
	for i, pk in ipairs(parts) do
		local session, ok, data, padding = cluster.unpackresponse(pk:sub(3))
		ok_all = ok_all and session == 77 and ok
		if i == 1 then
			acc[1] = data
		else
			acc[#acc + 1] = data
			assert((padding or false) == (i < #parts))
		end
	end
	local m, msz = cluster.concat(acc)
	log("reply pieces", #parts, ok_all, msz, skynet.tostring(m, msz) == reply)
	skynet.trash(m, msz)
	local e = cluster.packresponse(3, false, string.rep("e", 40000))
	local s, ok, data = cluster.unpackresponse(e:sub(3))
	log("error reply", #e, s, ok, #data)

	-- packrequest and append consume the block; packresponse does not
	local p, sz = skynet.pack("hello", 1)
	cluster.packrequest(1, 1, p, sz)
	log("request frees block", not pcall(skynet.tostring, p, sz))
	-- that block is gone: passing it again is an error (no block is made
	-- in between that could take its address)
	local stale = { pcall(cluster.packrequest, 1, 1, p, sz) }
	log("stale", stale[1], strip(stale[2]))
	p, sz = skynet.pack("again")
	local t = {}
	cluster.append(t, p, sz)
	log("append frees block", not pcall(skynet.tostring, p, sz), skynet.unpack(t[1]))
	p, sz = skynet.pack("kept")
	cluster.packresponse(1, true, p, sz)
	log("response keeps block", skynet.unpack(p, sz))
	skynet.trash(p, sz)
	p, sz = skynet.pack(string.rep("x", 70000))
	cluster.packrequest("@big", 1, p, sz)
	log("multipart request frees block", not pcall(skynet.tostring, p, sz))
	p, sz = skynet.pack()
	local req = cluster.packpush(4, 1, p, sz)
	log("empty push", tohex(req))

	-- every truncation of valid packets: a value or a Lua error, and the
	-- errors name the problem
	local errors, values = 0, 0
	local samples = {}
	for _, pk in ipairs {
		cluster.packrequest(1, 1, driver.str2p("abcdefgh")),
		cluster.packrequest("@name", 2, driver.str2p("abcdefgh")),
		(select(1, cluster.packrequest(1, 1, driver.str2p(string.rep("z", 40000))))),
		(select(1, cluster.packpush("@n", 1, driver.str2p(string.rep("z", 40000))))),
		cluster.packtrace("tag"),
	} do
		local body = pk:sub(3)
		for n = 0, #body - 1 do
			local ok, err = pcall(cluster.unpackrequest, body:sub(1, n))
			if ok then
				values = values + 1
			else
				errors = errors + 1
				samples[strip(err)] = true
			end
		end
	end
	for _, hex in ipairs { "05", "ff", "80ff40", "01000000000000000000000000ff" } do
		local ok, err = pcall(cluster.unpackrequest, fromhex(hex))
		if not ok then samples[strip(err)] = true end
	end
	for _, hex in ipairs { "", "01000000", "0100000007", "010000000200" } do
		local ok, err = pcall(cluster.unpackresponse, fromhex(hex))
		if not ok then samples[strip(err)] = true end
	end
	log("truncated", "errors", errors, "values", values)
	local sorted = {}
	for k in pairs(samples) do sorted[#sorted + 1] = k end
	table.sort(sorted)
	for _, k in ipairs(sorted) do log("malformed:", k) end
	local bad = { pcall(cluster.unpackrequest, driver.str2p("\0\0"), 5) }
	log("bad size", bad[1], strip(bad[2]))
	bad = { pcall(cluster.packresponse, 1, true, nil, 3) }
	log("null with size", bad[1], strip(bad[2]))

	-- across services: a block handed to the peer, which packs it, and
	-- packets the peer unpacks from the message it is dispatching
	local peer = skynet.newservice("t_cluster_core_peer")
	skynet.register_protocol { name = "client", id = skynet.PTYPE_CLIENT }
	for _, n in ipairs { 10, 70000 } do
		local text = string.rep("y", n)
		local nexts, packets = skynet.call(peer, "lua", "req", "@far", skynet.pack("hand", text))
		for _, pk in ipairs(packets) do
			skynet.rawsend(peer, "client", pk:sub(3))
		end
		local g = skynet.call(peer, "lua", "got")
		local a = g[1] and g[1].args or {}
		log("handed", n, nexts, #packets, #g, g[1] and g[1].addr, g[1] and g[1].session, a[1], a[2] == text)
	end

	local name = cluster.nodename()
	log("nodename", name:match("%d+$") ~= nil, name:find("[%s\128-\255]") == nil)
	log("isname", cluster.isname("@x"), cluster.isname("x"), cluster.isname(1))
end

skynet.start(function()
	local ok, e = pcall(function()
		run_vectors(assert(skynet.getenv "cluster_vectors", "config cluster_vectors"))
		extra()
	end)
	if not ok then
		log("FAIL", e)
	end
	log("done")
	skynet.abort()
end)
