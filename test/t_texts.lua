-- Log texts of skynet 1.8 that operators grep for: a native service whose
-- init fails, and the message-queue overload warning.
-- Lines start with "t_texts:"; the last one is "t_texts: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

if mode == "busy" then
	skynet.start(function()
		skynet.dispatch("lua", function(session, _, cmd)
			if cmd == "block" then
				local t0 = skynet.hpc()
				while skynet.mqlen() < 1500 and skynet.hpc() - t0 < 3 * 1000000000 do
				end
			elseif cmd == "sync" then
				skynet.retpack()
			end
		end)
	end)
	return
end

skynet.start(function()
	skynet.error("t_texts: bad logger", tostring((skynet.launch("logger", "/surely/not/a/dir/x.log"))))
	skynet.error("t_texts: unknown module", tostring((skynet.launch("t_texts_no_such_module"))))
	local busy = skynet.newservice(SERVICE_NAME, "busy")
	skynet.send(busy, "lua", "block")
	for i = 1, 1500 do
		skynet.send(busy, "lua", "x")
	end
	skynet.call(busy, "lua", "sync")
	skynet.error("t_texts: done")
	skynet.abort()
end)
