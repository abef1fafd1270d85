-- skynet.crypt and md5 benchmark: the login handshake's pieces (dhexchange,
-- dhsecret, hmac64, desdecode of a token) per second, and DES, base64, hex, SHA-1 and MD5 over
-- 1 KiB of text in MB/s.
local skynet = require "skynet"
require "skynet.manager"
local crypt = require "skynet.crypt"
local md5 = require "md5"

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

skynet.start(function()
	local a, b = crypt.randomkey(), crypt.randomkey()
	local A = crypt.dhexchange(a)
	report("crypt_dhexchange", rate(20000, function() crypt.dhexchange(a) end), "ops/s")
	report("crypt_dhsecret", rate(20000, function() crypt.dhsecret(A, b) end), "ops/s")
	report("crypt_hmac64", rate(500000, function() crypt.hmac64(a, b) end), "ops/s")
	report("crypt_randomkey", rate(500000, crypt.randomkey), "ops/s")

	-- a login token's size: the key schedule dominates
	local token = crypt.desencode("12345678", string.rep("t", 40))
	report("crypt_desdecode_token", rate(200000, function() crypt.desdecode("12345678", token) end), "ops/s")

	local text = string.rep("0123456789abcdef", 64)
	local mb = #text / 1e6
	local key = "12345678"
	local des = crypt.desencode(key, text)
	local b64 = crypt.base64encode(text)
	local hex = crypt.hexencode(text)
	local n = 20000
	report("crypt_desencode_1k", rate(n, function() crypt.desencode(key, text) end) * mb, "MB/s")
	report("crypt_desdecode_1k", rate(n, function() crypt.desdecode(key, des) end) * mb, "MB/s")
	report("crypt_base64encode_1k", rate(n, function() crypt.base64encode(text) end) * mb, "MB/s")
	report("crypt_base64decode_1k", rate(n, function() crypt.base64decode(b64) end) * mb, "MB/s")
	report("crypt_hexdecode_1k", rate(n, function() crypt.hexdecode(hex) end) * mb, "MB/s")
	report("crypt_sha1_1k", rate(n, function() crypt.sha1(text) end) * mb, "MB/s")
	report("crypt_hmac_sha1_1k", rate(n, function() crypt.hmac_sha1(key, text) end) * mb, "MB/s")
	report("md5_sum_1k", rate(n, function() md5.sum(text) end) * mb, "MB/s")
	skynet.sleep(10)	-- let the logger write the lines out
	skynet.abort()
end)
