-- The login server under test (master and, launched by it, its slaves):
-- tokens are base64(user)@base64(server):base64(password), password
-- "password"; server "slow" keeps the login handler busy a while, server
-- "nowhere" makes it fail. The master answers "port", "slow" (how many are
-- in the slow handler) and "secret <uid>".
local login = require "snax.loginserver"
local crypt = require "skynet.crypt"
local skynet = require "skynet"

local conf = {
	host = "127.0.0.1",
	port = 0,
	instance = 2,
	multilogin = false,
	name = "t_login_master",
}

function conf.auth_handler(token)
	local user, server, password = token:match("([^@]+)@([^:]+):(.+)")
	user = crypt.base64decode(user)
	server = crypt.base64decode(server)
	password = crypt.base64decode(password)
	assert(password == "password", "Invalid password")
	return server, user
end

local secrets = {}
local logins = 0
local slow = 0	-- login handlers now in their "slow" sleep

function conf.login_handler(server, uid, secret)
	if server == "nowhere" then
		error("Unknown server " .. server)
	end
	if server == "slow" then
		slow = slow + 1
		skynet.sleep(50)
		slow = slow - 1
	end
	logins = logins + 1
	secrets[uid] = crypt.hexencode(secret)
	return uid .. "#" .. logins
end

function conf.command_handler(command, arg)
	if command == "port" then
		return conf.port
	elseif command == "slow" then
		return slow
	elseif command == "secret" then
		return secrets[arg]
	end
	error("unknown command " .. tostring(command))
end

login(conf)
