-- skynet.db.mysql against a real mariadbd started by the Rust test
-- (node/tests/mysql.rs) on loopback: env mysql_port, user "sk" with password
-- "sekret", database "skt". The Rust side SIGKILLs the server once our
-- SELECT SLEEP(30) shows in its process list. Login and framing corner
-- cases come from a scripted fake server in this service.
local skynet = require "skynet"
local socket = require "skynet.socket"
local crypt = require "skynet.crypt"
local mysql = require "skynet.db.mysql"
require "skynet.manager"

local function log(...)
	skynet.error("t_mysql:", ...)
end

local PORT = assert(tonumber(skynet.getenv "mysql_port"), "mysql_port")
local HOST = "127.0.0.1"

local function errtext(err)
	return (tostring(err):gsub("^.-:%d+: ", ""))
end

local function opts(extra)
	local o = { host = HOST, port = PORT, user = "sk", password = "sekret", database = "skt" }
	for k, v in pairs(extra or {}) do
		o[k] = v
	end
	return o
end

local function bad(r)
	return tostring(r.badresult), tostring(r.errno), tostring(r.sqlstate), tostring(r.err)
end

local cases = {}

function cases.connect()
	local db = mysql.connect(opts {
		charset = "utf8mb4",
		on_connect = function(d)
			d:query "SET @greeting = 'hello'"
		end,
	})
	log("server", db:server_ver():match "MariaDB" or db:server_ver())
	log("on_connect", db:query("SELECT @greeting AS g")[1].g)
	local p = db:ping()
	log("ping", type(p), p.affected_rows, p.server_status & 2)
	db:disconnect()
	local ok, err = pcall(mysql.connect, opts { password = "wrong" })
	-- as in skynet, the caller gets a socket error; the server's reason is logged
	log("wrong password", ok, errtext(err))
	ok, err = pcall(mysql.connect, opts { charset = "klingon" })
	log("bad charset", ok, errtext(err))
end

function cases.types()
	local db = mysql.connect(opts())
	db:query "DROP TABLE IF EXISTS t"
	local r = db:query [[CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, big BIGINT, d DOUBLE,
		f FLOAT, s VARCHAR(20), b BLOB, n INT NULL, dt DATETIME, dc DECIMAL(10,2), u BIGINT UNSIGNED,
		ti TINYINT, tm TIME, dd DATE)]]
	log("create", r.affected_rows, r.badresult)
	r = db:query([[INSERT INTO t (big, d, f, s, b, n, dt, dc, u, ti, tm, dd) VALUES
		(9007199254740993, 2.5, 0.5, 'hé', ]] .. mysql.quote_sql_str("a\0b'c\\\n\"") ..
		[[, NULL, '2024-02-29 13:14:15', 12.34, 18446744073709551615, -5, '-01:02:03', '2024-01-02')]])
	log("insert", r.affected_rows, r.insert_id)
	r = db:query "INSERT INTO t (big) VALUES (1), (2)"
	log("insert2", r.affected_rows, r.insert_id, r.message)
	local row = db:query("SELECT * FROM t WHERE id = 1")[1]
	log("int", row.id, math.type(row.id), row.big, math.type(row.big))
	log("double", row.d, math.type(row.d), row.f)
	log("string", row.s, row.b == "a\0b'c\\\n\"", #row.b)
	log("null", row.n, row.dt, row.dc, row.ti, row.tm, row.dd)
	log("unsigned", row.u, math.type(row.u))
	log("quote", mysql.quote_sql_str "a\0z\26'\"\\\t\r\n\b")
	log("rows", #db:query "SELECT id FROM t", #db:query "SELECT id FROM t WHERE id > 99")
	db:set_compact_arrays(true)
	row = db:query("SELECT id, n, s FROM t WHERE id = 1")[1]
	log("compact", row[1], row[2], row[3])
	db:disconnect()
end

function cases.multi()
	local db = mysql.connect(opts())
	local r = db:query "SELECT 1 AS a; SELECT 2 AS b, 'x' AS c; UPDATE t SET n = 7 WHERE id = 2"
	log("multi", r.multiresultset, #r, r[1][1].a, r[2][1].b, r[2][1].c, r[3].affected_rows, r.badresult)
	r = db:query "SELECT 1 AS a; SELECT * FROM nope; SELECT 3"
	log("multi bad", r.multiresultset, #r, r[1][1].a, bad(r))
	log("multi after", db:query("SELECT 4 AS z")[1].z)
	db:disconnect()
end

function cases.errors()
	local db = mysql.connect(opts())
	local r = db:query "SELEC 1"
	log("syntax", r.badresult, r.errno, r.sqlstate, r.err:match "SQL syntax" or r.err)
	r = db:query "SELECT * FROM nope"
	log("missing", bad(r))
	r = db:query "INSERT INTO t (id) VALUES (1)"
	log("duplicate", r.errno, r.sqlstate)
	log("after errors", db:query("SELECT 5 AS five")[1].five)
	db:disconnect()
end

function cases.prepared()
	local db = mysql.connect(opts())
	local stmt = db:prepare "SELECT ? + 1 AS x, ? AS s, ? AS n, ? AS fl, ? AS bo"
	log("prepare", stmt.badresult, stmt.param_count, stmt.field_count, #stmt.params, #stmt.fields)
	local r = db:execute(stmt, 41, "hi", nil, 1.25, true)
	log("execute", r[1].x, math.type(r[1].x), r[1].s, r[1].n, r[1].fl, r[1].bo)
	local ok, err = pcall(db.execute, db, stmt, 1)
	log("execute arity", ok, errtext(err))
	ok, err = pcall(db.execute, db, stmt, 1, 2, 3, 4, {})
	log("execute type", ok, errtext(err))
	db:stmt_close(stmt)
	r = db:execute(stmt, 1, 2, 3, 4, 5)
	log("closed", r.badresult, r.errno)
	local sel = db:prepare "SELECT id, big, d, f, s, b, n, dt, dc, u, ti, tm, dd FROM t WHERE id = ?"
	local row = db:execute(sel, 1)[1]
	log("binary int", row.id, math.type(row.id), row.big, row.ti, row.u, math.type(row.u))
	log("binary float", row.d, row.f, row.dc)
	log("binary string", row.s, row.b == "a\0b'c\\\n\"", row.n)
	log("binary time", row.dt, row.tm, row.dd)
	log("binary none", #db:execute(sel, 999))
	local ins = db:prepare "INSERT INTO t (big, s) VALUES (?, ?)"
	r = db:execute(ins, -42, "p")
	log("binary insert", r.affected_rows, r.insert_id)
	log("stmt_reset", db:stmt_reset(sel).badresult)
	r = db:prepare "SELEC ?"
	log("prepare bad", r.badresult, r.errno, r.sqlstate)
	ok, err = pcall(db.execute, db, r, 1)
	log("execute bad stmt", ok, errtext(err):match "^[^\n]*needs a statement from prepare: prepare failed" ~= nil)
	db:query "DROP PROCEDURE IF EXISTS two"
	db:query "CREATE PROCEDURE two() BEGIN SELECT 1 AS one; SELECT 2 AS two; END"
	local call = db:prepare "CALL two()"
	r = db:execute(call)
	log("procedure", r.multiresultset, r.mulitresultset, #r, r[1][1].one, r[2][1].two, r[3].affected_rows)
	db:disconnect()
end

function cases.big()
	-- over one 16 MB packet each way: the request and the row are split
	local db = mysql.connect(opts { max_packet_size = 64 * 1024 * 1024 })
	local s = string.rep("0123456789abcdef", 1100000) -- 17.6 MB
	local stmt = db:prepare "SELECT ? AS v"
	local r = db:execute(stmt, s)
	log("big", r.badresult, r.err, r[1] and #r[1].v, r[1] and r[1].v == s)
	r = db:query("SELECT '" .. s .. "' AS v")
	log("big text", r.badresult, r[1] and #r[1].v, r[1] and r[1].v == s)
	db:disconnect()
end

-- A fake server: each connection plays the next script entry.
local function serve(script)
	local id, _, port = socket.listen(HOST, 0)
	local n = 0
	socket.start(id, function(fd)
		n = n + 1
		local play = script[n]
		skynet.fork(function()
			socket.start(fd)
			play(fd)
		end)
	end)
	return id, port
end

local function packet(seq, payload)
	return string.pack("<I3B", #payload, seq) .. payload
end

local SCRAMBLE = "abcdefghijklmnopqrst"
local function greeting(plugin)
	return packet(0, string.pack("<Bz I4 c8 B I2 B I2 I2 B c10 c12 B z", 10, "5.5.5-fake", 7,
		SCRAMBLE:sub(1, 8), 0, 0xf7ff, 33, 2, 0x81ff, 21, string.rep("\0", 10), SCRAMBLE:sub(9), 0, plugin))
end
local OK = string.pack("<BBBI2I2", 0, 0, 0, 2, 0)

local function token(password, scramble)
	local s1 = crypt.sha1(password)
	local s3 = crypt.sha1(scramble .. crypt.sha1(s1))
	return (s3:gsub("()(.)", function(i, c)
		return string.char(c:byte() ~ s1:byte(i))
	end))
end

local function hex(s)
	return (s:gsub(".", function(c)
		return string.format("%02x", c:byte())
	end))
end

-- The module's SHA-256 checked on FIPS 180-2 examples, then used to check tokens.
local sha256 = mysql._sha256
local function sha2_token(password, scramble)
	local s1 = sha256(password)
	local s2 = sha256(sha256(s1) .. scramble)
	return (s1:gsub("()(.)", function(i, c)
		return string.char(c:byte() ~ s2:byte(i))
	end))
end

function cases.sha256()
	log("sha256 empty", hex(sha256 ""))
	log("sha256 abc", hex(sha256 "abc"))
	log("sha256 two blocks", hex(sha256 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
	log("sha256 55/56/64", hex(sha256(string.rep("a", 55))):sub(1, 8), hex(sha256(string.rep("a", 56))):sub(1, 8),
		hex(sha256(string.rep("a", 64))):sub(1, 8))
end

local function read_packet(fd)
	local head = socket.read(fd, 4)
	if not head then
		return nil
	end
	local len, seq = string.unpack("<I3B", head)
	return socket.read(fd, len), seq
end

function cases.fake()
	local seen = {}
	local switched = "another scramble 20b"
	local script = {
		function(fd) -- auth switch to native password with a new scramble
			socket.write(fd, greeting "mysql_native_password")
			local login = read_packet(fd)
			local user, tok, pos = string.unpack("z s1", login, 33)
			seen.user, seen.first = user, tok == token("pw", SCRAMBLE)
			local _, after_db = string.unpack("z", login, pos)
			seen.plugin = string.unpack("z", login, after_db)
			socket.write(fd, packet(2, "\xfemysql_native_password\0" .. switched .. "\0"))
			local again, seq = read_packet(fd)
			seen.second, seen.seq = again == token("pw", switched), seq
			socket.write(fd, packet(4, OK))
			local q = read_packet(fd)
			seen.query = q
			socket.write(fd, packet(1, OK))
		end,
		function(fd) -- switch to a plugin we do not speak
			socket.write(fd, greeting "mysql_native_password")
			read_packet(fd)
			socket.write(fd, packet(2, "\xfeclient_ed25519\0" .. switched .. "\0"))
		end,
		function(fd) -- caching_sha2_password, fast path
			socket.write(fd, greeting "caching_sha2_password")
			local login = read_packet(fd)
			local _, tok, pos = string.unpack("z s1", login, 33)
			local _, after_db = string.unpack("z", login, pos)
			seen.sha2_plugin = string.unpack("z", login, after_db)
			seen.sha2 = tok == sha2_token("pw", SCRAMBLE)
			socket.write(fd, packet(2, "\1\3") .. packet(3, OK))
			read_packet(fd)
			socket.write(fd, packet(1, OK))
		end,
		function(fd) -- caching_sha2_password after a switch, then full auth asked
			socket.write(fd, greeting "mysql_native_password")
			read_packet(fd)
			socket.write(fd, packet(2, "\xfecaching_sha2_password\0" .. switched .. "\0"))
			local tok = read_packet(fd)
			seen.sha2_switch = tok == sha2_token("pw", switched)
			socket.write(fd, packet(4, "\1\4"))
		end,
		function(fd) -- a greeting of another protocol version
			socket.write(fd, packet(0, "\9old\0"))
		end,
		function(fd) -- a result whose row is cut short, then silence
			socket.write(fd, greeting "mysql_native_password")
			read_packet(fd)
			socket.write(fd, packet(2, OK))
			read_packet(fd)
			local col = string.pack("s1s1s1s1s1s1BI2I4BI2BI2", "def", "", "", "", "a", "", 12, 33, 10, 0xfd, 0, 0, 0)
			socket.write(fd, packet(1, "\1") .. packet(2, col) .. packet(3, "\xfe\0\0\2\0") .. packet(4, "\5ab"))
		end,
		function(fd) -- dies in the middle of a result
			socket.write(fd, greeting "mysql_native_password")
			read_packet(fd)
			socket.write(fd, packet(2, OK))
			read_packet(fd)
			socket.write(fd, packet(1, "\1"))
			socket.close(fd)
		end,
	}
	local id, port = serve(script)
	local o = { host = HOST, port = port, user = "me", password = "pw" }
	local db = mysql.connect(o)
	log("fake switch", seen.user, seen.first, seen.plugin, seen.second, seen.seq)
	local r = db:query "SELECT 1"
	log("fake query", seen.query:byte(1), seen.query:sub(2), r.affected_rows)
	db:disconnect()
	local ok, err = pcall(mysql.connect, o)
	log("fake plugin", ok, errtext(err))
	db = mysql.connect(o)
	log("fake sha2", seen.sha2_plugin, seen.sha2, db:query("SELECT 1").server_status)
	db:disconnect()
	ok, err = pcall(mysql.connect, o)
	log("fake sha2 full", ok, errtext(err), seen.sha2_switch)
	ok, err = pcall(mysql.connect, o)
	log("fake version", ok, errtext(err))
	for _, name in ipairs { "fake truncated", "fake dies" } do
		db = mysql.connect(o)
		local t0 = skynet.now()
		ok, err = pcall(db.query, db, "SELECT a")
		log(name, ok, errtext(err), skynet.now() - t0 < 300)
		db:disconnect()
	end
	socket.close(id)
end

local function wait_until(f)
	for _ = 1, 1000 do
		if f() then
			return true
		end
		skynet.sleep(1)
	end
	return false
end

-- The Rust test SIGKILLs the server once the SLEEP shows in its process list.
function cases.kill()
	local db = mysql.connect(opts())
	log("kill warmup", db:query("SELECT 1 AS one")[1].one)
	local results = {}
	local t0 = skynet.now()
	local function track(name, sql)
		skynet.fork(function()
			local ok, err = pcall(db.query, db, sql)
			results[name] = { ok = ok, err = err, at = skynet.now() }
		end)
	end
	track("sleep", "SELECT SLEEP(30)")
	track("queued", "SELECT 2")
	log("kill blocked")
	local done = wait_until(function()
		return results.sleep and results.queued
	end)
	log("kill all failed", done, results.sleep and results.sleep.ok, results.queued and results.queued.ok)
	if done then
		-- well before the SLEEP's 30 s: the Rust side polls every 50 ms, then kills
		log("kill error", tostring(results.sleep.err), math.max(results.sleep.at, results.queued.at) - t0 < 1000)
	end
	local t1 = skynet.now()
	local ok = pcall(db.query, db, "SELECT 3")
	log("kill after", ok, skynet.now() - t1 < 300)
	db:disconnect()
end

local order = { "sha256", "connect", "types", "multi", "errors", "prepared", "big", "fake", "kill" }

require "cases"(cases, order, log, 6000)
