-- snax.msgserver: skynet's message server on snax.gateserver, for users
-- that a login server (snax.loginserver) has logged in.
--
-- Wire format (big endian; every packet is a netpack frame):
--   handshake, the first packet of a connection:
--     b64(uid) "@" b64(server) "#" b64(subid) ":" index ":" b64(hmac)
--     where hmac = crypt.hmac_hash(secret, username .. ":" .. index), the
--     username being the part before the first ":". Answer: "200 OK", or
--     "400 Bad Request", "401 Unauthorized", "403 Index Expired", "404 User
--     Not Found" (then the connection is closed). Each handshake must use a
--     larger index than the last one of that user.
--   request:  content .. u32 session
--   response: content .. u8 ok (1, or 0 when the handler raised) .. u32 session
-- A request repeating a session already answered (a client that reconnects
-- and asks again) gets the cached answer; the last `expired_number` (128)
-- answers are kept.
--
-- API: userid(username) -> uid, subid, server; username(uid, subid, server);
-- login(username, secret); logout(username); ip(username); start(conf) with
-- conf.login_handler(uid, secret) -> subid, logout_handler(uid, subid),
-- kick_handler(uid, subid) (the lua commands login, logout, kick), and
-- request_handler(username, msg) -> answer, register_handler(servername,
-- gateconf) (at open, its results are open's; the gate conf must carry
-- servername; ours also passes the conf, with the port bound),
-- disconnect_handler(username),
-- expired_number.

local skynet = require "skynet"
local gateserver = require "snax.gateserver"
local netpack = require "skynet.netpack"
local crypt = require "skynet.crypt"
local driver = require "skynet.socketdriver"

local b64encode = crypt.base64encode
local b64decode = crypt.base64decode

local server = {}

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
}

local online = {}    -- username -> user
local handshake = {} -- fd -> address, until its first packet
local conn_user = {} -- fd -> user

function server.userid(username)
	local uid, servername, subid = username:match "([^@]*)@([^#]*)#(.*)"
	return b64decode(uid), b64decode(subid), b64decode(servername)
end

function server.username(uid, subid, servername)
	return string.format("%s@%s#%s", b64encode(uid), b64encode(servername), b64encode(tostring(subid)))
end

function server.logout(username)
	local u = online[username]
	online[username] = nil
	if u and u.fd and conn_user[u.fd] then
		local fd = u.fd
		conn_user[fd] = nil
		gateserver.closeclient(fd)
	end
end

function server.login(username, secret)
	assert(online[username] == nil, "user already online")
	online[username] = {
		username = username,
		secret = secret,
		version = 0,   -- index of the last handshake
		serial = 0,    -- answers given so far, for expiry
		cache = {},    -- session -> { fd, packet, version, serial }
	}
end

function server.ip(username)
	local u = online[username]
	if u and u.fd then
		return u.ip
	end
end

function server.start(conf)
	local expired_number = conf.expired_number or 128
	local request_handler = assert(conf.request_handler)

	local handler = {}
	local CMD = {
		login = assert(conf.login_handler),
		logout = assert(conf.logout_handler),
		kick = assert(conf.kick_handler),
	}

	function handler.command(cmd, source, ...)
		local f = assert(CMD[cmd], cmd)
		return f(...)
	end

	function handler.open(source, gateconf)
		-- gateconf (ours) carries the address and port bound
		return conf.register_handler(assert(gateconf.servername, "msgserver: gate conf needs servername"), gateconf)
	end

	function handler.connect(fd, addr)
		handshake[fd] = addr
		gateserver.openclient(fd)
	end

	function handler.disconnect(fd)
		handshake[fd] = nil
		local u = conn_user[fd]
		if u then
			conn_user[fd] = nil
			u.fd = nil
			if conf.disconnect_handler then
				conf.disconnect_handler(u.username)
			end
		end
		gateserver.closeclient(fd)
	end

	handler.error = handler.disconnect

	-- nil on success, else the error answer
	local function check_handshake(fd, text, addr)
		local username, index, hmac = text:match "^([^:]*):([^:]*):([^:]*)$"
		if not username then
			return "400 Bad Request"
		end
		local u = online[username]
		if u == nil then
			return "404 User Not Found"
		end
		local idx = math.tointeger(tonumber(index))
		if not idx then
			return "400 Bad Request"
		end
		if idx <= u.version then
			return "403 Index Expired"
		end
		local want = crypt.hmac_hash(u.secret, username .. ":" .. index)
		if b64decode(hmac) ~= want then
			return "401 Unauthorized"
		end
		-- a newer connection of the same user takes over
		if u.fd and u.fd ~= fd and conn_user[u.fd] == u then
			local old = u.fd
			conn_user[old] = nil
			gateserver.closeclient(old)
		end
		u.version = idx
		u.fd = fd
		u.ip = addr
		conn_user[fd] = u
	end

	local function on_handshake(fd, addr, text)
		local ok, err = pcall(check_handshake, fd, text, addr)
		if not ok then
			skynet.error("msgserver: handshake error: " .. tostring(err))
			err = "400 Bad Request"
		end
		driver.send(fd, netpack.pack(err or "200 OK"))
		if err then
			gateserver.closeclient(fd)
		end
	end

	-- drops cached answers older than expired_number
	local function expire(u)
		if u.serial < expired_number * 2 then
			return
		end
		local top = 0
		for session, p in pairs(u.cache) do
			if p.fd == nil then -- answered and sent
				if p.serial < expired_number then
					u.cache[session] = nil
				else
					p.serial = p.serial - expired_number
					if p.serial > top then
						top = p.serial
					end
				end
			end
		end
		u.serial = top + 1
	end

	local function on_request(fd, text)
		local u = conn_user[fd]
		if not u then
			error("request before handshake")
		end
		if #text < 4 then
			error("request shorter than its session")
		end
		local session = string.unpack(">I4", text, -4)
		local content = text:sub(1, -5)
		local p = u.cache[session]
		if p and p.version == u.version then
			-- the same session twice on one connection
			u.cache[session] = nil
			if p.packet == nil then
				error(string.format("Conflict session %s", crypt.hexencode(string.pack(">I4", session))))
			end
			p = nil
		end
		if p == nil then
			p = { fd = fd }
			u.cache[session] = p
			local ok, answer = pcall(request_handler, u.username, content)
			local body
			if ok then
				body = (answer or "") .. string.pack(">BI4", 1, session)
			else
				skynet.error(answer)
				body = string.pack(">BI4", 0, session)
			end
			p.packet = string.pack(">s2", body)
		else
			-- a repeated request from a reconnected client
			p.fd = fd
			if p.packet == nil then
				return -- still being answered: the first call sends it
			end
		end
		p.version = u.version
		p.serial = u.serial
		u.serial = u.serial + 1
		local to = p.fd
		p.fd = nil
		if conn_user[to] then
			driver.send(to, p.packet)
		end
		expire(u)
	end

	function handler.message(fd, msg, sz)
		local text = netpack.tostring(msg, sz)
		local addr = handshake[fd]
		if addr then
			handshake[fd] = nil
			on_handshake(fd, addr, text)
			return
		end
		local ok, err = pcall(on_request, fd, text)
		if not ok then
			skynet.error(string.format("Invalid package %s : %s", err, text))
			gateserver.closeclient(fd)
		end
	end

	return gateserver.start(handler)
end

return server
