-- snax.loginserver: skynet's login server. `login(conf)` turns the calling
-- service into the master (the first instance, which registers
-- "." .. (conf.name or "login"), listens and answers commands) or, in the
-- instances the master launches of the same service, into a slave that runs
-- the handshake of one connection at a time.
--
-- conf: host ("0.0.0.0"), port (0 picks a free one; conf.port is then set to
-- the port bound), instance (8 slaves), multilogin (false: a user being
-- logged in is refused), name, and the handlers
--   auth_handler(token) -> server, uid      (in the slaves; raise to refuse)
--   login_handler(server, uid, secret) -> subid   (in the master)
--   command_handler(command, ...) -> ...     (lua messages to the master)
--
-- The protocol, one line ("\n") each, "S:" from the server, "C:" the client:
--   S: base64(challenge)            8 random bytes
--   C: base64(dhexchange(ckey))     the client's DH public key
--   S: base64(dhexchange(skey))     the server's; both sides then have
--                                   secret = dhsecret(other public, own key)
--   C: base64(hmac64(challenge, secret))
--   C: base64(desencode(secret, token))
--   S: "200 " .. base64(subid)      or "401 Unauthorized" (handshake or
--      auth_handler failed), "403 Forbidden" (login_handler failed),
--      "406 Not Acceptable" (already logging in, multilogin off)
-- then the server closes the connection.
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local crypt = require "skynet.crypt"

-- Raised when the connection is gone, so the failure is not reported twice.
local socket_error = setmetatable({}, { __tostring = function() return "socket error" end })

local function expect_socket(stage, fd, v)
	if not v then
		skynet.error(string.format("%s failed: socket (fd = %d) closed", stage, fd))
		error(socket_error)
	end
	return v
end

local function send_line(stage, fd, text)
	expect_socket(stage, fd, socket.write(fd, text .. "\n"))
end

-- The slave side: the handshake on fd, then auth_handler on the token.
-- Returns ok, server, uid, secret (ok false: auth_handler raised, server is
-- its error).
local function handshake(auth_handler, fd)
	-- a client that sends more than 8K without a line break is cut off
	socket.limit(fd, 8192)
	local function recv_line()
		return expect_socket("auth", fd, socket.readline(fd))
	end

	local challenge = crypt.randomkey()
	send_line("auth", fd, crypt.base64encode(challenge))

	local client_public = crypt.base64decode(recv_line())
	if #client_public ~= 8 then
		error "Invalid client key"
	end
	local server_key = crypt.randomkey()
	send_line("auth", fd, crypt.base64encode(crypt.dhexchange(server_key)))
	local secret = crypt.dhsecret(client_public, server_key)

	local proof = crypt.base64decode(recv_line())
	if proof ~= crypt.hmac64(challenge, secret) then
		error "challenge failed"
	end

	local token = crypt.desdecode(secret, crypt.base64decode(recv_line()))
	local ok, server, uid = pcall(auth_handler, token)
	return ok, server, uid, secret
end

local function run_slave(auth_handler)
	-- What the master gets back: the handshake's results; nil, "socket
	-- error" when the connection went away; false, err for anything else.
	local function reply(ok, ...)
		if ok then
			return skynet.pack(...)
		end
		local err = ...
		if err == socket_error then
			return skynet.pack(nil, "socket error")
		end
		return skynet.pack(false, err)
	end

	local function serve(fd, addr)
		skynet.error(string.format("connect from %s (fd = %d)", addr, fd))
		socket.start(fd)
		local msg, sz = reply(pcall(handshake, auth_handler, fd))
		-- the master writes the answer and closes
		socket.abandon(fd)
		return msg, sz
	end

	skynet.dispatch("lua", function(_, _, fd, addr)
		local ok, msg, sz = pcall(serve, fd, addr)
		if ok then
			skynet.ret(msg, sz)
		else
			skynet.ret(skynet.pack(false, msg))
		end
	end)
end

-- The master side of one connection, after a slave did the handshake.
local function login_one(conf, logging_in, slave, fd, addr)
	local ok, server, uid, secret = skynet.call(slave, "lua", fd, addr)
	if not ok then
		if ok == false then
			send_line("response 401", fd, "401 Unauthorized")
		end
		error(server)
	end

	if not conf.multilogin then
		if logging_in[uid] then
			send_line("response 406", fd, "406 Not Acceptable")
			error(string.format("User %s is already login", uid))
		end
		logging_in[uid] = true
	end
	local handled, subid = pcall(conf.login_handler, server, uid, secret)
	logging_in[uid] = nil

	if not handled then
		send_line("response 403", fd, "403 Forbidden")
		error(subid)
	end
	send_line("response 200", fd, "200 " .. crypt.base64encode(subid or ""))
end

local function run_master(conf)
	local instances = conf.instance or 8
	assert(instances > 0)
	local host = conf.host or "0.0.0.0"
	local port = assert(tonumber(conf.port))

	skynet.dispatch("lua", function(_, _, command, ...)
		skynet.ret(skynet.pack(conf.command_handler(command, ...)))
	end)

	local slaves = {}
	for i = 1, instances do
		slaves[i] = skynet.newservice(SERVICE_NAME)
	end

	local listener, _, bound = socket.listen(host, port)
	conf.port = bound or port
	skynet.error(string.format("login server listen at : %s %d", host, conf.port))

	local logging_in = {}
	local next_slave = 0
	socket.start(listener, function(fd, addr)
		next_slave = next_slave % #slaves + 1
		local ok, err = pcall(login_one, conf, logging_in, slaves[next_slave], fd, addr)
		if not ok and err ~= socket_error then
			skynet.error(string.format("invalid client (fd = %d) error = %s", fd, tostring(err)))
		end
		-- this service never started fd, so close it by id
		socket.close_fd(fd)
	end)
end

local function login(conf)
	local name = "." .. (conf.name or "login")
	skynet.start(function()
		if skynet.localname(name) then
			run_slave(assert(conf.auth_handler))
		else
			assert(conf.login_handler)
			assert(conf.command_handler)
			skynet.register(name)
			run_master(conf)
		end
	end)
end

return login
