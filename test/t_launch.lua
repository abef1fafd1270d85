-- LAUNCH log lines, and newservice of a script that does not exist.
-- Lines start with "t_launch:"; the last one is "t_launch: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

if mode == "child" then
	local args = table.pack(...)
	skynet.start(function()
		skynet.error("t_launch: child args", type(args[3]), table.unpack(args, 1, args.n))
	end)
	return
end

skynet.start(function()
	local child = skynet.newservice(SERVICE_NAME, "child", "arg1", 2, "three")
	skynet.error("t_launch: child", skynet.address(child))
	local ok, err = pcall(skynet.newservice, "t_launch_no_such_script")
	skynet.error("t_launch: missing script", ok, tostring(err):match("call failed$"))
	skynet.error("t_launch: done")
	skynet.abort()
end)
