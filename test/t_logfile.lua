-- Writes to the file logger and waits for log rotation: the test renames
-- the file, sends SIGHUP and creates the marker file named by config key
-- `t_logfile_marker`. Lines start with "t_logfile:".
local skynet = require "skynet"
require "skynet.manager"

skynet.start(function()
	skynet.error("t_logfile: before rotation")
	local marker = skynet.getenv "t_logfile_marker"
	local t0 = skynet.now()
	while skynet.now() - t0 < 500 do
		local f = io.open(marker)
		if f then
			f:close()
			break
		end
		skynet.sleep(2)
	end
	skynet.error("t_logfile: after rotation")
	skynet.error("t_logfile: done")
	skynet.abort()
end)
