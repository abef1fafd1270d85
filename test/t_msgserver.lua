-- snax.msgserver end to end: a login by command, then a client over
-- loopback TCP: handshake answers, requests and their cached answers after
-- a reconnect, a handler error, kick.
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local crypt = require "skynet.crypt"

local T = "t_msgserver"
local function say(fmt, ...)
	skynet.error(T .. ": " .. string.format(fmt, ...))
end

local function readpacket(fd)
	local h = socket.read(fd, 2)
	if not h then
		return nil
	end
	local n = string.unpack(">I2", h)
	if n == 0 then
		return ""
	end
	return socket.read(fd, n)
end

local function sendpacket(fd, text)
	socket.write(fd, string.pack(">s2", text))
end

local port
local function connect_and_shake(text)
	local fd = assert(socket.open("127.0.0.1", port))
	sendpacket(fd, text)
	return fd, readpacket(fd)
end

local function token(username, index, secret)
	local hmac = crypt.hmac_hash(secret, username .. ":" .. index)
	return string.format("%s:%d:%s", username, index, crypt.base64encode(hmac))
end

local function request(fd, text, session)
	sendpacket(fd, text .. string.pack(">I4", session))
end

local function answer(fd)
	local p = readpacket(fd)
	if not p then
		return "EOF"
	end
	local content, ok, session = p:sub(1, -6), p:byte(-5), string.unpack(">I4", p, -4)
	return string.format("%s ok=%d session=%d", content, ok, session)
end

skynet.start(function()
	skynet.timeout(2000, function()
		say("TIMEOUT")
		skynet.abort()
	end)
	local srv = skynet.newservice "t_msgsrv"
	port = skynet.call(srv, "lua", "open", { address = "127.0.0.1", port = 0, servername = "sample" })
	local secret = "8bytekey"
	local subid = skynet.call(srv, "lua", "login", "alice", secret)
	say("subid %s", subid)
	local username = string.format("%s@%s#%s", crypt.base64encode("alice"), crypt.base64encode("sample"),
		crypt.base64encode(tostring(subid)))

	local fd, r = connect_and_shake(token(username, 1, secret))
	say("handshake %s", r)
	request(fd, "hello", 1)
	say("answer %s", answer(fd))
	request(fd, "boom", 2)
	say("answer %s", answer(fd))
	request(fd, "slow", 3)
	socket.close(fd)

	-- reconnect: a newer index; session 1 again gets the cached answer
	skynet.sleep(50)
	fd, r = connect_and_shake(token(username, 2, secret))
	say("reconnect %s", r)
	request(fd, "hello", 1)
	say("cached %s", answer(fd))
	request(fd, "slow", 3)
	say("after reconnect %s", answer(fd))
	request(fd, "again", 4)
	say("answer %s", answer(fd))

	local fd2
	fd2, r = connect_and_shake(token(username, 2, secret))
	say("old index %s", r)
	say("closed %s", tostring(readpacket(fd2)))
	fd2, r = connect_and_shake(token(username, 9, "wrongkey"))
	say("bad hmac %s", r)
	fd2, r = connect_and_shake(token("nobody@x#y", 1, secret))
	say("unknown %s", r)
	fd2, r = connect_and_shake("no colons here")
	say("garbage %s", r)

	skynet.call(srv, "lua", "kick", "alice", subid)
	say("after kick %s", answer(fd))
	say("done")
	skynet.abort()
end)
