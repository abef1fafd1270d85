-- skynet.crypt and md5 against the values C skynet gives for the same calls
-- (test/vectors/crypt.txt, one call a line: "module.function <TAB> arguments
-- <TAB> result"; arguments "s<hex>" string, "i<n>" integer, "n" nil, "t" a
-- table; result "=<hex>" or "!<error>"), then what vectors can't show:
-- random keys, client.crypt, the padding table, big inputs, a DH handshake.
-- Lines start with "t_crypt:"; the last one is "t_crypt: done".
local skynet = require "skynet"
require "skynet.manager"
local crypt = require "skynet.crypt"
local md5 = require "md5"

local function log(...)
	skynet.error("t_crypt:", ...)
end

local function fromhex(h)
	return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

local function tohex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function decode_arg(a)
	local tag, rest = a:sub(1, 1), a:sub(2)
	if tag == "s" then
		return fromhex(rest)
	elseif tag == "i" then
		return math.tointeger(tonumber(rest))
	elseif tag == "t" then
		return {}
	end
	assert(tag == "n", a)
	return nil
end

-- Error texts without the position, and with the function named by its last
-- part only: the name Lua finds through package.loaded depends on the order
-- of a table walk ("md5.core.sum" or "md5.sum").
local function normalize(e)
	e = tostring(e):gsub("^[^:]*:%d+: ", "")
	return (e:gsub("to '([^']*)'", function(n)
		return "to '" .. n:match("[^.]*$") .. "'"
	end))
end

local function run_vectors(path)
	local mods = { crypt = crypt, md5 = md5 }
	local total, passed, shown = 0, 0, 0
	for line in io.lines(path) do
		local fname, args, want = line:match("^([^\t]+)\t([^\t]*)\t(.*)$")
		local mod, name = fname:match("^(%w+)%.(.+)$")
		local argv, n = {}, 0
		for a in args:gmatch("[^,]+") do
			n = n + 1
			argv[n] = decode_arg(a)
		end
		local ok, r = pcall(mods[mod][name], table.unpack(argv, 1, n))
		local got = ok and ("=" .. tohex(r)) or ("!" .. normalize(r))
		if want:sub(1, 1) == "!" then
			want = "!" .. normalize(want:sub(2))
		end
		total = total + 1
		if got == want then
			passed = passed + 1
		elseif shown < 10 then
			shown = shown + 1
			log("MISMATCH", fname, args:sub(1, 60), "want", want:sub(1, 80), "got", got:sub(1, 80))
		end
	end
	log("vectors", total, "passed", passed)
end

local function err(f, ...)
	local ok, e = pcall(f, ...)
	return ok and "no error" or normalize(e)
end

local function extra()
	-- randomkey: 8 bytes, never all zero, not the same twice
	local seen, distinct, zero = {}, 0, 0
	for _ = 1, 200 do
		local k = crypt.randomkey()
		assert(#k == 8)
		if k == string.rep("\0", 8) then zero = zero + 1 end
		if not seen[k] then
			seen[k] = true
			distinct = distinct + 1
		end
	end
	log("randomkey distinct", distinct, "zero", zero)

	log("padding", crypt.padding.iso7816_4, crypt.padding.pkcs7)
	local client = require "client.crypt"
	log("client.crypt", client.hexencode(client.sha1 "abc"), client.padding.pkcs7)

	-- skynet decodes "g" as the digit 16; here it is not hex
	log("hex g", err(crypt.hexdecode, "0g"), err(crypt.hexdecode, "g0"))
	log("hex upper", err(crypt.hexdecode, "AB"))

	-- inputs far past the scratch buffer
	local big = string.rep("0123456789abcdef", 65536)
	local key = "\1\2\3\4\5\6\7\8"
	log("big base64", crypt.base64decode(crypt.base64encode(big)) == big)
	log("big hex", crypt.hexdecode(crypt.hexencode(big)) == big)
	local c = crypt.desencode(key, big, crypt.padding.pkcs7)
	log("big des", #c, crypt.desdecode(key, c, crypt.padding.pkcs7) == big)
	log("big xor", crypt.xor_str(crypt.xor_str(big, "key"), "key") == big)
	log("big md5", md5.sumhexa(big), #md5.crypt(big, "k", "seed"))
	log("big sha1", crypt.hexencode(crypt.sha1(big)))

	-- the loginserver handshake, both sides here
	local ckey, skey = crypt.randomkey(), crypt.randomkey()
	local s1 = crypt.dhsecret(crypt.dhexchange(ckey), skey)
	local s2 = crypt.dhsecret(crypt.dhexchange(skey), ckey)
	log("dh agree", s1 == s2, #s1)
	local challenge = crypt.randomkey()
	log("hmac64 len", #crypt.hmac64(challenge, s1))

	-- md5.crypt without a seed: 8 bytes of the clock
	local t = md5.crypt("hello", "key")
	log("md5 crypt no seed", t:byte(1), #t, md5.decrypt(t, "key"))
	log("md5 info", md5._VERSION, md5._DESCRIPTION)
	log("hmacmd5", md5.hmacmd5("what do ya want for nothing?", "Jefe"))
end

skynet.start(function()
	local ok, e = pcall(function()
		run_vectors(assert(skynet.getenv "crypt_vectors", "config crypt_vectors"))
		extra()
	end)
	if not ok then
		log("FAIL", e)
	end
	log("done")
	skynet.abort()
end)
