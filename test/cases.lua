-- The runner of the tests that are a list of named cases: runs them in order,
-- each in pcall (a failure is logged as "FAIL name error" and the next case
-- runs), logs "done" and aborts the node; logs "TIMEOUT" and aborts if the
-- whole run takes longer than `timeout` (1/100 s).
local skynet = require "skynet"

return function(cases, order, log, timeout)
	skynet.start(function()
		skynet.timeout(timeout, function()
			log("TIMEOUT")
			skynet.abort()
		end)
		skynet.fork(function()
			for _, name in ipairs(order) do
				local ok, err = pcall(cases[name])
				if not ok then
					log("FAIL", name, tostring(err))
				end
			end
			log("done")
			skynet.abort()
		end)
	end)
end
