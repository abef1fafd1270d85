-- skynet.db.mysql: a MySQL / MariaDB client (protocol 4.1) on skynet.socketchannel.
--
--   local mysql = require "skynet.db.mysql"
--   local db = mysql.connect { host = "127.0.0.1", port = 3306, database = "d",
--       user = "u", password = "p", charset = "utf8mb4", max_packet_size = 1 << 20,
--       on_connect = function(db) ... end, overload = f, compact_arrays = false }
--   db:query(sql)             -> rows | OK table | multi-result table | bad result
--   db:prepare(sql)           -> statement (prepare_id, param_count, ...) | bad result
--   db:execute(stmt, ...)     -> as query, binary protocol, arguments bound in order
--   db:stmt_reset(stmt); db:stmt_close(stmt); db:ping(); db:server_ver()
--   db:set_compact_arrays(bool); db:disconnect(); mysql.quote_sql_str(s)
--
-- Results follow skynet: a row is a table field name -> value (or index ->
-- value with compact_arrays); integer and floating columns become Lua
-- numbers, NULL leaves the field out (nil). A statement without rows gives
-- its OK packet ({affected_rows, insert_id, server_status, warning_count,
-- message}). Several result sets (multi-statements, procedures) come as an
-- array with `multiresultset = true` (execute also sets skynet's spelling
-- `mulitresultset`). A server error is returned, not raised: a table with
-- `badresult = true`, `errno`, `err`, `sqlstate` (inside a multi-result it
-- marks the array itself). A packet that does not parse raises an error
-- naming the problem and drops the connection (the stream cannot be trusted
-- after it); a connection lost with requests in flight fails them at once
-- (socketchannel). Login speaks mysql_native_password and the fast path of
-- caching_sha2_password (also after an auth switch); its full path (needs
-- TLS or RSA) and other plugins fail the connect with a message.

local socketchannel = require "skynet.socketchannel"
local crypt = require "skynet.crypt"

local byte, char, sub, rep, format, gsub = string.byte, string.char, string.sub, string.rep, string.format, string.gsub
local pack, unpack = string.pack, string.unpack
local concat = table.concat
local tonumber, tointeger, type, error, setmetatable = tonumber, math.tointeger, type, error, setmetatable
local sha1 = crypt.sha1

local mysql = { _VERSION = "0.14" }
local db_meta = { __index = mysql }

-- Character set names -> default collation ids (as the server numbers them).
local CHARSETS = {
	_default = 0, big5 = 1, dec8 = 3, cp850 = 4, hp8 = 6, koi8r = 7, latin1 = 8, latin2 = 9,
	swe7 = 10, ascii = 11, ujis = 12, sjis = 13, hebrew = 16, tis620 = 18, euckr = 19,
	koi8u = 22, gb2312 = 24, greek = 25, cp1250 = 26, gbk = 28, latin5 = 30, armscii8 = 32,
	utf8 = 33, ucs2 = 35, cp866 = 36, keybcs2 = 37, macce = 38, macroman = 39, cp852 = 40,
	latin7 = 41, utf8mb4 = 45, cp1251 = 51, utf16 = 54, utf16le = 56, cp1256 = 57,
	cp1257 = 59, utf32 = 60, binary = 63, geostd8 = 92, cp932 = 95, eucjpms = 97,
	gb18030 = 248,
}

local COM_QUERY, COM_PING = 0x03, 0x0e
local COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE, COM_STMT_RESET = 0x16, 0x17, 0x19, 0x1a
local MORE_RESULTS = 0x08 -- SERVER_MORE_RESULTS_EXISTS
local UNSIGNED_FLAG = 0x20
-- long password, found rows, long flag, connect with db, no schema, odbc,
-- ignore space, protocol 4.1, interactive, ignore sigpipe, transactions,
-- reserved, secure connection, multi statements, multi results (skynet's
-- set without local files: LOAD DATA LOCAL is not served) + plugin auth,
-- so that an auth switch is possible.
local CLIENT_FLAGS = (260047 & ~0x80) | 0x80000
local MAX_PAYLOAD = 0xffffff
local NATIVE = "mysql_native_password"

local function fail(what, ...)
	error("mysql: bad packet: " .. format(what, ...), 0)
end

---------------------------------------------------------------- packets

-- Reads one logical packet (joining 16 MB parts); returns payload, next seq.
local function read_packet(sock)
	local parts, seq = nil, nil
	local payload
	repeat
		local head = sock:read(4)
		local len
		len, seq = unpack("<I3B", head)
		payload = len > 0 and sock:read(len) or ""
		if len == MAX_PAYLOAD or parts then
			parts = parts or {}
			parts[#parts + 1] = payload
		end
	until len ~= MAX_PAYLOAD
	if parts then
		payload = concat(parts)
	end
	if payload == "" then
		fail "empty packet"
	end
	return payload, (seq + 1) & 0xff
end

-- Frames `payload` as packets numbered from `seq` (splitting at 16 MB).
local function frame(payload, seq)
	local out, pos, n = {}, 1, #payload
	repeat
		local len = math.min(n - pos + 1, MAX_PAYLOAD)
		out[#out + 1] = pack("<I3B", len, seq & 0xff) .. sub(payload, pos, pos + len - 1)
		pos, seq = pos + len, seq + 1
	until len < MAX_PAYLOAD
	return concat(out)
end

-- Length-encoded integer at pos: value (nil for NULL), next pos.
local function lenenc(data, pos)
	local first = byte(data, pos)
	if not first then
		fail("length-encoded integer past the end (at %d of %d)", pos, #data)
	end
	if first < 0xfb then
		return first, pos + 1
	elseif first == 0xfb then
		return nil, pos + 1
	elseif first == 0xfc then
		if pos + 2 > #data then
			fail "truncated 2-byte length"
		end
		return unpack("<I2", data, pos + 1)
	elseif first == 0xfd then
		if pos + 3 > #data then
			fail "truncated 3-byte length"
		end
		return unpack("<I3", data, pos + 1)
	elseif first == 0xfe then
		if pos + 8 > #data then
			fail "truncated 8-byte length"
		end
		return unpack("<I8", data, pos + 1)
	end
	fail("bad length-encoded integer (first byte 0xff at %d)", pos)
end

local function lenenc_bytes(n)
	if n < 0xfb then
		return char(n)
	elseif n < 1 << 16 then
		return pack("<BI2", 0xfc, n)
	elseif n < 1 << 24 then
		return pack("<BI3", 0xfd, n)
	end
	return pack("<BI8", 0xfe, n)
end

-- Length-encoded string at pos: string (nil for NULL), next pos.
local function lenenc_str(data, pos)
	local len
	len, pos = lenenc(data, pos)
	if len == nil then
		return nil, pos
	end
	if len < 0 or pos + len - 1 > #data then
		fail("string of %d bytes past the end of a %d-byte packet", len, #data)
	end
	return sub(data, pos, pos + len - 1), pos + len
end

local function is_eof(p)
	return byte(p) == 0xfe and #p < 9
end

local function parse_err(p)
	if #p < 3 then
		fail "short error packet"
	end
	local errno, pos = unpack("<I2", p, 2)
	local sqlstate
	if sub(p, pos, pos) == "#" then
		sqlstate = sub(p, pos + 1, pos + 5)
		pos = pos + 6
	end
	return errno, sub(p, pos), sqlstate
end

local function parse_ok(p)
	local res = {}
	local pos
	res.affected_rows, pos = lenenc(p, 2)
	res.insert_id, pos = lenenc(p, pos)
	if pos + 3 > #p then
		fail "short OK packet"
	end
	res.server_status, res.warning_count, pos = unpack("<I2I2", p, pos)
	local message = sub(p, pos)
	-- MariaDB sends the info as a length-encoded string; MySQL as the rest.
	local n = byte(p, pos)
	if n and n < 0xfb and pos + n == #p then
		message = sub(p, pos + 1)
	end
	if message ~= "" then
		res.message = message
	end
	return res
end

local function eof_status(p)
	if #p >= 5 then
		local _, status = unpack("<I2I2", p, 2)
		return status
	end
	return 0
end

local function parse_field(p)
	local pos, name, _ = 1, nil, nil
	for _ = 1, 4 do -- catalog, schema, table, org_table
		local _, next_pos = lenenc_str(p, pos)
		pos = next_pos
	end
	name, pos = lenenc_str(p, pos)
	_, pos = lenenc_str(p, pos) -- org_name
	pos = pos + 1 -- length of the fixed fields (0x0c)
	if pos + 9 > #p + 1 then
		fail "short column definition"
	end
	local charsetnr, length, typ, flags, decimals = unpack("<I2I4BI2B", p, pos)
	return {
		name = name,
		type = typ,
		is_signed = flags & UNSIGNED_FLAG == 0 or nil,
		decimals = decimals,
		charsetnr = charsetnr,
		length = length,
	}
end

---------------------------------------------------------------- text results

local text_numbers = {}
for _, t in ipairs { 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0d, 0xf6 } do
	text_numbers[t] = true
end

local function text_row(p, cols, compact)
	local row, pos = {}, 1
	for i = 1, #cols do
		local col = cols[i]
		local v
		v, pos = lenenc_str(p, pos)
		if v ~= nil and text_numbers[col.type] then
			v = tonumber(v)
		end
		row[compact and i or col.name] = v
	end
	return row
end

---------------------------------------------------------------- binary results

-- `unsigned` is the format for columns with the UNSIGNED flag.
local function fixed(fmt, size, unsigned)
	unsigned = unsigned or fmt
	return function(p, pos, signed)
		if pos + size - 1 > #p then
			fail "binary value past the end of the row"
		end
		return unpack(signed and fmt or unsigned, p, pos)
	end
end

-- BIGINT UNSIGNED above math.maxinteger becomes a float, as in text results.
local function unsigned64(p, pos)
	if pos + 7 > #p then
		fail "binary value past the end of the row"
	end
	local v, npos = unpack("<i8", p, pos)
	if v < 0 then
		v = v + 18446744073709551616.0
	end
	return v, npos
end

local function bigint(p, pos, signed)
	if signed then
		if pos + 7 > #p then
			fail "binary value past the end of the row"
		end
		return unpack("<i8", p, pos)
	end
	return unsigned64(p, pos)
end

local function datetime(p, pos)
	local len
	len, pos = lenenc(p, pos)
	if not len or pos + len - 1 > #p then
		fail "date past the end of the row"
	end
	local y, mo, d, h, mi, s, us = 0, 0, 0, 0, 0, 0, 0
	if len >= 4 then
		y, mo, d = unpack("<I2BB", p, pos)
	end
	if len >= 7 then
		h, mi, s = unpack("BBB", p, pos + 4)
	end
	if len >= 11 then
		us = unpack("<I4", p, pos + 7)
	end
	local v = format("%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s)
	if us > 0 then
		v = v .. format(".%06d", us)
	end
	return v, pos + len
end

local function date(p, pos)
	local v, npos = datetime(p, pos)
	return sub(v, 1, 10), npos
end

local function time(p, pos)
	local len
	len, pos = lenenc(p, pos)
	if not len or pos + len - 1 > #p then
		fail "time past the end of the row"
	end
	local neg, days, h, mi, s, us = 0, 0, 0, 0, 0, 0
	if len >= 8 then
		neg, days, h, mi, s = unpack("<BI4BBB", p, pos)
	end
	if len >= 12 then
		us = unpack("<I4", p, pos + 8)
	end
	local v = format("%s%02d:%02d:%02d", neg == 1 and "-" or "", days * 24 + h, mi, s)
	if us > 0 then
		v = v .. format(".%06d", us)
	end
	return v, pos + len
end

local function decimal(p, pos)
	local v
	v, pos = lenenc_str(p, pos)
	return tonumber(v), pos
end

-- Fixed-size and date types; every other type is a length-encoded string.
local binary_values = {
	[0x01] = fixed("i1", 1, "I1"),
	[0x02] = fixed("<i2", 2, "<I2"),
	[0x03] = fixed("<i4", 4, "<I4"),
	[0x04] = fixed("<f", 4),
	[0x05] = fixed("<d", 8),
	[0x07] = datetime,
	[0x08] = bigint,
	[0x09] = fixed("<i4", 4, "<I4"),
	[0x0a] = date,
	[0x0b] = time,
	[0x0c] = datetime,
	[0x0d] = fixed("<i2", 2, "<I2"),
	[0x00] = decimal,
	[0xf6] = decimal,
}

local function binary_row(p, cols, compact)
	local n = #cols
	local nulls = 2 -- the packet header byte, then the null bitmap
	local pos = nulls + (n + 9) // 8
	if pos - 1 > #p then
		fail "short binary row"
	end
	local row = {}
	for i = 1, n do
		local bit = i + 1 -- the bitmap skips two bits
		local isnull = byte(p, nulls + bit // 8) & (1 << (bit % 8)) ~= 0
		if not isnull then
			local col = cols[i]
			local read = binary_values[col.type] or lenenc_str
			local v
			v, pos = read(p, pos, col.is_signed)
			row[compact and i or col.name] = v
		end
	end
	return row
end

---------------------------------------------------------------- result sets

-- One result: rows or OK table; second value true when more follow; or
-- nil, err, errno, sqlstate for a server error.
local function read_result(sock, compact, row_parser)
	local p = read_packet(sock)
	local first = byte(p)
	if first == 0xff then
		return nil, parse_err(p)
	elseif first == 0x00 then
		local ok = parse_ok(p)
		return ok, ok.server_status & MORE_RESULTS ~= 0
	elseif is_eof(p) then
		fail "unexpected EOF packet where a result was expected"
	end
	local ncols = lenenc(p, 1)
	if not ncols then
		fail "LOAD DATA LOCAL request, not supported"
	end
	local cols = {}
	for i = 1, ncols do
		p = read_packet(sock)
		if byte(p) == 0xff then
			return nil, parse_err(p)
		end
		cols[i] = parse_field(p)
	end
	p = read_packet(sock)
	if not is_eof(p) then
		fail "column definitions not ended by EOF"
	end
	local rows = {}
	while true do
		p = read_packet(sock)
		if is_eof(p) then
			return rows, eof_status(p) & MORE_RESULTS ~= 0
		elseif byte(p) == 0xff then
			return nil, parse_err(p)
		end
		rows[#rows + 1] = row_parser(p, cols, compact)
	end
end

local function bad(t, errno, err, sqlstate)
	t.badresult, t.errno, t.err, t.sqlstate = true, errno, err, sqlstate
	return t
end

-- The response function of a query / execute: all its result sets.
local function results(self, row_parser, multi_keys)
	return function(sock)
		local res, more, err, sqlstate = read_result(sock, self.compact, row_parser)
		if res == nil then
			return true, bad({}, more, err, sqlstate)
		end
		if not more then
			return true, res
		end
		local all = { res }
		for _, k in ipairs(multi_keys) do
			all[k] = true
		end
		while more do
			res, more, err, sqlstate = read_result(sock, self.compact, row_parser)
			if res == nil then
				return true, bad(all, more, err, sqlstate)
			end
			all[#all + 1] = res
		end
		return true, all
	end
end

---------------------------------------------------------------- login

local function scramble_token(password, scramble)
	if password == "" then
		return ""
	end
	local s1 = sha1(password)
	local s3 = sha1(scramble .. sha1(s1))
	local out = {}
	for i = 1, #s3 do
		out[i] = char(byte(s3, i) ~ byte(s1, i))
	end
	return concat(out)
end

-- SHA-256 (FIPS 180-4), for caching_sha2_password; login-time only, so
-- plain Lua is fast enough.
local K256 = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256(msg)
	local M = 0xffffffff
	local function ror(x, n)
		return ((x >> n) | (x << (32 - n))) & M
	end
	local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
	local ml = #msg
	msg = msg .. "\x80" .. rep("\0", (55 - ml) % 64) .. pack(">I8", ml * 8)
	local w = {}
	for chunk = 1, #msg, 64 do
		for i = 1, 16 do
			w[i] = unpack(">I4", msg, chunk + (i - 1) * 4)
		end
		for i = 17, 64 do
			local a, b = w[i - 15], w[i - 2]
			local s0 = ror(a, 7) ~ ror(a, 18) ~ (a >> 3)
			local s1 = ror(b, 17) ~ ror(b, 19) ~ (b >> 10)
			w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M
		end
		local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
		for i = 1, 64 do
			local t1 = hh + (ror(e, 6) ~ ror(e, 11) ~ ror(e, 25)) + ((e & f) ~ (~e & g)) + K256[i] + w[i]
			local t2 = (ror(a, 2) ~ ror(a, 13) ~ ror(a, 22)) + ((a & b) ~ (a & c) ~ (b & c))
			hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & M, c, b, a, (t1 + t2) & M
		end
		h[1], h[2], h[3], h[4] = (h[1] + a) & M, (h[2] + b) & M, (h[3] + c) & M, (h[4] + d) & M
		h[5], h[6], h[7], h[8] = (h[5] + e) & M, (h[6] + f) & M, (h[7] + g) & M, (h[8] + hh) & M
	end
	return pack(">I4I4I4I4I4I4I4I4", table.unpack(h))
end
mysql._sha256 = sha256 -- for the tests

local function xor(a, b)
	local out = {}
	for i = 1, #a do
		out[i] = char(byte(a, i) ~ byte(b, i))
	end
	return concat(out)
end

local SHA2 = "caching_sha2_password"

-- caching_sha2_password's fast path: SHA256(p) xor SHA256(SHA256(SHA256(p)) .. nonce).
local function sha2_token(password, scramble)
	if password == "" then
		return ""
	end
	local s1 = sha256(password)
	return xor(s1, sha256(sha256(s1) .. scramble))
end

local function token_for(plugin, password, scramble)
	if plugin == NATIVE then
		return scramble_token(password, scramble)
	elseif plugin == SHA2 then
		return sha2_token(password, scramble)
	end
	error(format("mysql: server wants auth plugin %s, only %s and %s are supported", plugin, NATIVE, SHA2), 0)
end

local function read_greeting(sock)
	local p = read_packet(sock)
	if byte(p) == 0xff then
		local errno, msg, sqlstate = parse_err(p)
		return false, format("errno:%d, msg:%s,sqlstate:%s", errno, msg, sqlstate)
	end
	return true, p
end

local function parse_greeting(p)
	local proto = byte(p)
	if proto ~= 10 then
		fail("handshake protocol %d, only 10 is understood", proto)
	end
	local ok, version, pos = pcall(unpack, "z", p, 2)
	if not ok or pos + 31 > #p + 1 then
		fail "short handshake packet"
	end
	local _, s1, caps_lo, lang, status, caps_hi, auth_len
	_, s1, _, caps_lo, lang, status, caps_hi, auth_len, pos = unpack("<I4c8BI2BI2I2B", p, pos)
	pos = pos + 10
	local caps = caps_lo | caps_hi << 16
	local len2 = math.max(13, auth_len - 8) - 1 -- the part ends with a NUL
	local s2 = sub(p, pos, pos + len2 - 1)
	pos = pos + len2 + 1
	local plugin = NATIVE
	if caps & 0x80000 ~= 0 and pos <= #p then
		plugin = unpack("z", p .. "\0", pos)
	end
	return { version = version, caps = caps, lang = lang, status = status, scramble = s1 .. s2, plugin = plugin }
end

-- Reply to the login packet: OK, an error, or an auth switch request.
local function read_auth_reply(sock)
	local p, seq = read_packet(sock)
	local first = byte(p)
	if first == 0x00 then
		return true, { ok = true }
	elseif first == 0xff then
		local errno, msg, sqlstate = parse_err(p)
		return false, format("errno:%d, msg:%s,sqlstate:%s", errno, msg, sqlstate)
	elseif first == 0xfe then
		if #p == 1 then
			return false, "mysql: server asks for the old pre-4.1 password scheme, not supported"
		end
		local plugin, pos = unpack("z", p .. "\0", 2)
		local data = sub(p, pos)
		if byte(data, -1) == 0 then
			data = sub(data, 1, -2)
		end
		return true, { switch = plugin, scramble = data, seq = seq }
	elseif first == 0x01 and p == "\1\3" then
		return true, { fast = true } -- caching_sha2 fast auth done: OK follows
	elseif first == 0x01 and p == "\1\4" then
		return false, "mysql: caching_sha2_password wants full authentication (password not cached"
			.. " on the server), which needs TLS or RSA: not supported"
	end
	return false, format("mysql: auth method needs more steps (packet 0x%02x), not supported", first)
end

local function login(self, opts, charset)
	local user, password, database = opts.user or "", opts.password or "", opts.database or ""
	return function(channel)
		local g = parse_greeting(channel:response(read_greeting))
		self._server_ver = g.version
		self._server_capabilities = g.caps
		self._server_lang = g.lang
		self._server_status = g.status
		-- answer in the server's plugin if we speak it, else in ours (it may switch)
		local plugin = g.plugin == SHA2 and SHA2 or NATIVE
		local token = token_for(plugin, password, g.scramble)
		local req = pack("<I4I4Bc23zs1zz", CLIENT_FLAGS, self._max_packet_size, charset, rep("\0", 23), user,
			token, database, plugin)
		local reply = channel:request(frame(req, 1), read_auth_reply)
		if reply.switch then
			token = token_for(reply.switch, password, reply.scramble)
			reply = channel:request(frame(token, reply.seq), read_auth_reply)
			if reply.switch then
				error("mysql: server asked for a second auth switch", 0)
			end
		end
		if reply.fast then
			reply = channel:response(read_auth_reply)
		end
		if not reply.ok then
			error("mysql: login not ended by an OK packet", 0)
		end
		if opts.on_connect then
			opts.on_connect(self)
		end
	end
end

---------------------------------------------------------------- API

function mysql.connect(opts)
	local charset = CHARSETS[opts.charset or "_default"]
	if not charset then
		error(format("mysql: unknown charset %q", tostring(opts.charset)), 2)
	end
	local self = setmetatable({}, db_meta)
	self._max_packet_size = opts.max_packet_size or 1024 * 1024
	self.compact = opts.compact_arrays
	self.query_resp = results(self, text_row, { "multiresultset" })
	self.execute_resp = results(self, binary_row, { "multiresultset", "mulitresultset" })
	self.sockchannel = socketchannel.channel {
		host = opts.host,
		port = opts.port or 3306,
		auth = login(self, opts, charset),
		overload = opts.overload,
	}
	self.sockchannel:connect(true)
	return self
end

function mysql.disconnect(self)
	self.sockchannel:close()
	setmetatable(self, nil)
end

local function command(code, body)
	return frame(char(code) .. body, 0)
end

function mysql.query(self, sql)
	return self.sockchannel:request(command(COM_QUERY, sql), self.query_resp)
end

function mysql.ping(self)
	return self.sockchannel:request(command(COM_PING, ""), self.query_resp)
end

-- Reads n column definitions and their EOF.
local function read_defs(sock, n)
	local defs = {}
	if n == 0 then
		return defs
	end
	for i = 1, n do
		defs[i] = parse_field(read_packet(sock))
	end
	if not is_eof(read_packet(sock)) then
		fail "statement definitions not ended by EOF"
	end
	return defs
end

local function prepare_resp(sock)
	local p = read_packet(sock)
	local first = byte(p)
	if first == 0xff then
		return true, bad({}, parse_err(p))
	elseif first ~= 0x00 or #p < 12 then
		fail("prepare answered with packet 0x%02x", first)
	end
	local stmt = {}
	stmt.prepare_id, stmt.field_count, stmt.param_count, stmt.warning_count = unpack("<I4I2I2xI2", p, 2)
	stmt.params = read_defs(sock, stmt.param_count)
	stmt.fields = read_defs(sock, stmt.field_count)
	return true, stmt
end

function mysql.prepare(self, sql)
	return self.sockchannel:request(command(COM_STMT_PREPARE, sql), prepare_resp)
end

local function bind(v)
	local t = type(v)
	if t == "number" then
		if tointeger(v) then
			return "\x08\0", pack("<i8", v)
		end
		return "\x05\0", pack("<d", v)
	elseif t == "string" then
		return "\x0f\0", lenenc_bytes(#v) .. v
	elseif t == "boolean" then
		return "\x01\0", v and "\1" or "\0"
	elseif t == "nil" then
		return "\x06\0", ""
	end
	error("mysql: invalid parameter type " .. t, 3)
end

function mysql.execute(self, stmt, ...)
	if type(stmt) ~= "table" or not stmt.prepare_id then
		local why = type(stmt) == "table" and stmt.err and ": prepare failed: " .. stmt.err or ""
		error("mysql: execute needs a statement from prepare" .. why, 2)
	end
	local n = select("#", ...)
	if n ~= stmt.param_count then
		error(format("mysql: statement takes %d parameters, got %d", stmt.param_count, n), 2)
	end
	local body = { pack("<I4BI4", stmt.prepare_id, 0, 1) }
	if n > 0 then
		local args = { ... }
		local nulls, types, values = {}, {}, {}
		for i = 1, (n + 7) // 8 do
			local b = 0
			for j = 0, 7 do
				local k = (i - 1) * 8 + j + 1
				if k <= n and args[k] == nil then
					b = b | (1 << j)
				end
			end
			nulls[i] = char(b)
		end
		for i = 1, n do
			types[i], values[i] = bind(args[i])
		end
		body[2] = concat(nulls) .. "\1" .. concat(types) .. concat(values)
	end
	return self.sockchannel:request(command(COM_STMT_EXECUTE, concat(body)), self.execute_resp)
end

function mysql.stmt_reset(self, stmt)
	return self.sockchannel:request(command(COM_STMT_RESET, pack("<I4", stmt.prepare_id)), self.query_resp)
end

-- The server sends no answer to COM_STMT_CLOSE.
function mysql.stmt_close(self, stmt)
	return self.sockchannel:request(command(COM_STMT_CLOSE, pack("<I4", stmt.prepare_id)))
end

function mysql.server_ver(self)
	return self._server_ver
end

function mysql.set_compact_arrays(self, value)
	self.compact = value
end

local escapes = {
	["\0"] = "\\0", ["\b"] = "\\b", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
	["\26"] = "\\Z", ["\\"] = "\\\\", ["'"] = "\\'", ['"'] = '\\"',
}

function mysql.quote_sql_str(s)
	return "'" .. gsub(s, "[\0\b\n\r\t\26\\'\"]", escapes) .. "'"
end

return mysql
