-- A module for t_require whose body blocks (it is required from a skynet thread).
local skynet = require "skynet"
skynet.error("t_require: slow body begin")
skynet.sleep(5)
skynet.init(function()
	skynet.error("t_require: slow init")
end)
skynet.error("t_require: slow body end")
return { name = "slow" }
