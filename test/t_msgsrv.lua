-- The message server of the msgserver test (test/t_msgserver.lua drives it).
local skynet = require "skynet"
local msgserver = require "snax.msgserver"

local servername
local users = {} -- uid -> username
local subid = 0

local conf = {}

function conf.register_handler(name, gateconf)
	servername = name
	skynet.error("t_msgsrv: registered " .. name)
	return gateconf.port
end

function conf.login_handler(uid, secret)
	subid = subid + 1
	local username = msgserver.username(uid, subid, servername)
	msgserver.login(username, secret)
	users[uid] = username
	return subid
end

function conf.logout_handler(uid, sub)
	local u = users[uid]
	if u then
		users[uid] = nil
		msgserver.logout(u)
	end
end

function conf.kick_handler(uid, sub)
	conf.logout_handler(uid, sub)
end

function conf.disconnect_handler(username)
	skynet.error("t_msgsrv: afk " .. username)
end

local calls = 0
function conf.request_handler(username, msg)
	calls = calls + 1
	if msg == "boom" then
		error("handler raised on purpose")
	end
	if msg == "slow" then
		skynet.sleep(20)
	end
	local uid = msgserver.userid(username)
	return string.format("%s:%s#%d", uid, msg, calls)
end

msgserver.start(conf)
