-- md5: the native md5.core (sum, exor, crypt, decrypt) plus the hex digest
-- and HMAC-MD5, as skynet's lualib/md5.lua offers them. Returns md5.core's
-- own table, extended.
local core = require "md5.core"

local HEX16 = string.rep("%02x", 16)

-- The MD5 digest of k as 32 lower-case hex digits.
function core.sumhexa(k)
	return string.format(HEX16, string.byte(core.sum(k), 1, 16))
end

local BLOCK = 64
local IPAD = string.rep("\x36", BLOCK)
local OPAD = string.rep("\x5c", BLOCK)

-- HMAC-MD5 (RFC 2104) of data under key, as hex.
function core.hmacmd5(data, key)
	if #key > BLOCK then
		key = core.sum(key)
	end
	key = key .. string.rep("\0", BLOCK - #key)
	local inner = core.sum(core.exor(key, IPAD) .. data)
	return core.sumhexa(core.exor(key, OPAD) .. inner)
end

return core
