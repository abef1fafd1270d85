-- skynet.getenv / setenv: every config value is a string; setenv adds keys
-- but never changes one. Prints every key named in config key `t_env_keys`
-- (space separated). Lines start with "t_env:"; the last one is "t_env: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_env:", ...)
end

skynet.start(function()
	for key in string.gmatch(skynet.getenv "t_env_keys" or "", "%S+") do
		local v = skynet.getenv(key)
		log("getenv", key, type(v), tostring(v))
	end
	log("missing", tostring(skynet.getenv "t_env_surely_missing"))
	skynet.setenv("t_env_new", "fresh value")
	log("setenv", skynet.getenv "t_env_new")
	local ok, err = pcall(skynet.setenv, "t_env_new", "other")
	log("setenv again", ok, tostring(err):match("Can't setenv exist key : t_env_new$") ~= nil, skynet.getenv "t_env_new")
	ok, err = pcall(skynet.setenv, "thread", "9")
	log("setenv config key", ok, tostring(err):match("Can't setenv exist key : thread$") ~= nil, skynet.getenv "thread")
	log "done"
	skynet.abort()
end)
