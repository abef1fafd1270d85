-- A module for t_require: its body logs, and it registers an init function.
local skynet = require "skynet"
skynet.error("t_require: mod body")
skynet.init(function()
	skynet.error("t_require: mod init")
end)
return { name = "mod" }
