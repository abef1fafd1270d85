-- skynet.abort() ends the process (exit status 0) promptly.
local skynet = require "skynet"
require "skynet.manager"

skynet.start(function()
	skynet.error("t_abort: aborting")
	skynet.abort()
end)
