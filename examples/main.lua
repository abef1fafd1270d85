-- The example started by `skynet-node` with no config: a main service that
-- launches a counter service and talks to it with send and call.
local skynet = require "skynet"
require "skynet.manager"

skynet.start(function()
	skynet.error("Server start")
	local counter = skynet.newservice("counter")
	for i = 1, 3 do
		skynet.send(counter, "lua", "add", i)
	end
	local total = skynet.call(counter, "lua", "get")
	skynet.error("counter total", total)
	local ok, err = pcall(skynet.call, counter, "lua", "fail")
	skynet.error("a failing call:", ok, err)
	local word, list = skynet.call(counter, "lua", "echo", "hello", { 1, 2, 3 })
	skynet.error("echo:", word, table.concat(list, ","))
	skynet.error("example done, stopping the node")
	skynet.abort()
end)
