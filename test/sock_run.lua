-- Shared by the socket test services: runs `main` in a fork, logs "FAIL ..."
-- if it raises, then "done", and ends the node; a 15 s watchdog logs
-- "TIMEOUT" and ends it too.
local skynet = require "skynet"
require "skynet.manager"

return function(log, main)
	skynet.start(function()
		skynet.timeout(1500, function()
			log("TIMEOUT")
			skynet.abort()
		end)
		skynet.fork(function()
			local ok, err = pcall(main)
			if not ok then
				log("FAIL", err)
			end
			log("done")
			skynet.abort()
		end)
	end)
end
