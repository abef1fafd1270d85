-- snax.loginserver over real sockets on 127.0.0.1: a client here speaks the
-- protocol as skynet's examples/login/client.lua does, against the server
-- in t_logind.lua (2 slaves). Good and bad passwords, a forged challenge
-- answer, a bad client key, an unknown game server, two logins of one user
-- at once, a client gone mid-handshake, an overlong line.
-- Lines start with "t_login:"; the last one is "t_login: done".
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local crypt = require "skynet.crypt"

local function log(...)
	skynet.error("t_login:", ...)
end

local port

local function token(user, server, pass)
	return string.format("%s@%s:%s", crypt.base64encode(user), crypt.base64encode(server),
		crypt.base64encode(pass))
end

-- One client session; `how` bends a step: "bad hmac", "bad key",
-- "quit after key". Returns the result line (nil if the server closed
-- first), whether the server then closed the connection, and the secret.
local function client(user, server, pass, how)
	local fd = assert(socket.open("127.0.0.1", port))
	local function readline()
		return socket.readline(fd)
	end
	local function writeline(text)
		socket.write(fd, text .. "\n")
	end
	local challenge = crypt.base64decode(readline())
	local ckey = crypt.randomkey()
	if how == "bad key" then
		writeline(crypt.base64encode("1234"))
	else
		writeline(crypt.base64encode(crypt.dhexchange(ckey)))
	end
	if how == "quit after key" then
		socket.close(fd)
		return nil, true
	end
	local line = readline()
	local secret
	if how == "bad key" then
		-- the answer to a bad key is the refusal
	elseif line then
		secret = crypt.dhsecret(crypt.base64decode(line), ckey)
		local hmac = crypt.hmac64(challenge, secret)
		if how == "bad hmac" then
			hmac = crypt.hmac64(crypt.randomkey(), secret)
		end
		writeline(crypt.base64encode(hmac))
		-- (after a bad hmac the server answers at once: a token still unread
		-- when it closes would reset the connection under the answer)
		if how ~= "bad hmac" then
			writeline(crypt.base64encode(crypt.desencode(secret, token(user, server, pass))))
		end
		line = readline()
	end
	local closed = socket.readline(fd) == false
	socket.close(fd)
	return line, closed, secret
end

local function show(line, closed)
	if line and line:sub(1, 4) == "200 " then
		return "200 " .. crypt.base64decode(line:sub(5)), closed
	end
	return line, closed
end

local function main()
	local master = skynet.newservice("t_logind")
	port = skynet.call(master, "lua", "port")
	log("port", port > 0)

	local line, closed, secret = client("alice", "game1", "password")
	log("good", show(line, closed))
	log("secret agrees", skynet.call(master, "lua", "secret", "alice") == crypt.hexencode(secret))
	log("again", show(client("alice", "game1", "password")))

	log("bad password", show(client("bob", "game1", "wrong")))
	log("bad hmac", show(client("bob", "game1", "password", "bad hmac")))
	log("bad key", show(client("bob", "game1", "password", "bad key")))
	log("unknown server", show(client("bob", "nowhere", "password")))

	-- two logins of one user at once: the second is refused while the first
	-- is in the (slow) login handler; afterwards the user may log in again
	local results = {}
	local done = 0
	local function carol(i)
		results[i] = show(client("carol", "slow", "password"))
		done = done + 1
	end
	skynet.fork(carol, 1)
	while skynet.call(master, "lua", "slow") == 0 do
		skynet.sleep(1)
	end
	skynet.fork(carol, 2)
	while done < 2 do
		skynet.sleep(5)
	end
	log("multi", results[1], results[2])
	log("after multi", show(client("carol", "slow", "password")))

	log("quit", client("dave", "game1", "password", "quit after key"))
	skynet.sleep(20)

	-- more than 8K without a line break: the server cuts the client off
	local fd = assert(socket.open("127.0.0.1", port))
	socket.readline(fd)
	socket.write(fd, string.rep("A", 20000))
	log("overlong", socket.readline(fd), socket.disconnected(fd))
	socket.close(fd)
	skynet.sleep(20)
end

skynet.start(function()
	skynet.timeout(2000, function()
		log("TIMEOUT")
		skynet.abort()
	end)
	skynet.fork(function()
		local ok, err = pcall(main)
		if not ok then
			log("FAIL", err)
		end
		log("done")
		skynet.abort()
	end)
end)
