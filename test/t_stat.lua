-- skynet.stat of a key the kernel does not know: skynet's STAT answers "",
-- which intcommand turns into 0. Lines start with "t_stat:".
local skynet = require "skynet"
require "skynet.manager"

skynet.start(function()
	skynet.error("t_stat: unknown", pcall(skynet.stat, "nothing"))
	skynet.error("t_stat: message", math.type(skynet.stat "message"), "mqlen", skynet.stat "mqlen")
	skynet.error("t_stat: done")
	skynet.abort()
end)
