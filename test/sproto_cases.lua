-- Checks shared by the sproto process tests (t_sproto, t_sproto_skynet):
-- every row of the golden vectors sproto.tsv and sproto_pack.tsv through
-- the Lua API, and the schema compiler against addressbook.spb.hex.
-- `log` prints a line; failures raise.

local sproto = require "sproto"
local parser = require "sprotoparser"

local M = {}

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
M.hex = hex

local function unhex(h)
	return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- Deep equality that tells integers from floats.
local function same(a, b)
	if type(a) ~= type(b) then
		return false
	end
	if type(a) == "number" then
		return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b))
	end
	if type(a) ~= "table" then
		return a == b
	end
	for k, v in pairs(a) do
		if not same(v, b[k]) then
			return false
		end
	end
	for k in pairs(b) do
		if a[k] == nil then
			return false
		end
	end
	return true
end
M.same = same

local function show(v)
	if type(v) ~= "table" then
		return (math.type(v) == "float" and "F" or "") .. tostring(v)
	end
	local keys = {}
	for k in pairs(v) do
		keys[#keys + 1] = k
	end
	table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
	local out = {}
	for _, k in ipairs(keys) do
		out[#out + 1] = tostring(k) .. "=" .. show(v[k])
	end
	return "{" .. table.concat(out, ",") .. "}"
end
M.show = show

local function check(ok, what, ...)
	if not ok then
		error(string.format(what, ...), 2)
	end
end
M.check = check

function M.dir()
	return assert(require("skynet").getenv "sproto_vectors", "config sproto_vectors is not set")
end

local function readfile(name)
	local f = assert(io.open(M.dir() .. "/" .. name, "rb"))
	local s = f:read "a"
	f:close()
	return s
end
M.readfile = readfile

local function rows(name)
	local out = {}
	for line in readfile(name):gmatch "[^\n]+" do
		if line:sub(1, 1) ~= "#" then
			local cols = {}
			for c in (line .. "\t"):gmatch "([^\t]*)\t" do
				cols[#cols + 1] = c
			end
			out[#out + 1] = cols
		end
	end
	return out
end

local function value(expr)
	return assert(load("return " .. expr))()
end

-- The addressbook schema, compiled by our parser, checked against the
-- reference binary.
function M.schema(log)
	local bin = parser.parse(readfile "addressbook.sproto")
	local want = readfile("addressbook.spb.hex"):gsub("%s", "")
	check(hex(bin) == want, "compiled schema differs:\n%s\n%s", hex(bin), want)
	log("compiled schema matches", #bin)
	return sproto.new(bin), bin
end

function M.vectors(sp, log)
	local ntype, nrpc = 0, 0
	local client = sp:host "package"
	local request = client:attach(sp)
	local server = sp:host "package"
	local responder
	for _, r in ipairs(rows "sproto.tsv") do
		local kind, name, session, ud, expr, enc, pk, canonical = table.unpack(r)
		local v = value(expr)
		session = session ~= "-" and tonumber(session) or nil
		ud = ud ~= "-" and tonumber(ud) or nil
		if kind == "type" then
			local bin = sp:encode(name, v)
			if canonical == "yes" then
				check(hex(bin) == enc, "encode %s %s: %s", name, expr, hex(bin))
				check(hex(sproto.pack(bin)) == pk, "pack %s %s", name, expr)
				check(hex(sp:pencode(name, v)) == pk, "pencode %s %s", name, expr)
			else
				check(#bin == #enc // 2, "encode size %s %s", name, expr)
			end
			for _, b in ipairs { bin, unhex(enc) } do
				local got, used = sp:decode(name, b)
				check(same(got, v), "decode %s %s: %s", name, expr, show(got))
				check(used == #b, "decode %s used %s of %d", name, tostring(used), #b)
			end
			check(same(sp:pdecode(name, unhex(pk)), v), "pdecode %s %s", name, expr)
			ntype = ntype + 1
		elseif kind == "request" then
			local pkt = request(name, v, session, ud)
			check(hex(pkt) == pk, "request %s %s: %s", name, expr, hex(pkt))
			local t, pname, args, resp, gotud = server:dispatch(pkt)
			check(t == "REQUEST" and pname == name, "dispatch %s: %s %s", name, t, pname)
			check(same(args, v), "request args %s: %s", name, show(args))
			check(gotud == ud, "request ud %s", name)
			check((resp ~= nil) == (session ~= nil), "responder %s", name)
			responder = resp
			nrpc = nrpc + 1
		else
			local pkt = responder(v, ud)
			check(hex(pkt) == pk, "response %s %s: %s", name, expr, hex(pkt))
			local t, s, args, gotud = client:dispatch(pkt)
			check(t == "RESPONSE" and s == session, "dispatch response %s: %s %s", name, t, tostring(s))
			check(same(args, v), "response args %s: %s", name, show(args))
			check(gotud == ud, "response ud %s", name)
			nrpc = nrpc + 1
		end
	end
	log("type rows", ntype, "rpc rows", nrpc)
	local npack = 0
	for _, r in ipairs(rows "sproto_pack.tsv") do
		local what, expr, _, pk, up = table.unpack(r)
		local input = value(expr)
		check(hex(sproto.pack(input)) == pk, "pack %s", what)
		local want = up:sub(1, 1) == "(" and hex(input) or up
		check(hex(sproto.unpack(unhex(pk))) == want, "unpack %s", what)
		npack = npack + 1
	end
	log("pack rows", npack)
end

return M
