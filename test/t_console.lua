-- The console service starts the services named on standard input.
-- Started as `t_console` it launches the console; the test feeds the line
-- "t_console child hello" which makes the console start `t_console child hello`.
local skynet = require "skynet"
require "skynet.manager"

local mode, word = ...

if mode == "child" then
	skynet.start(function()
		skynet.error("t_console: child started with " .. tostring(word))
		skynet.error("t_console: done")
		skynet.abort()
	end)
else
	skynet.start(function()
		skynet.newservice("console")
		skynet.error("t_console: console started")
	end)
end
