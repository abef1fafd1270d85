-- A service that is a directory (found through a "dir/?/main.lua" pattern):
-- its own modules are requirable and SERVICE_PATH is its folder.
local skynet = require "skynet"
local helper = require "helper"

skynet.start(function()
	skynet.dispatch("lua", function()
		skynet.retpack(SERVICE_NAME, SERVICE_PATH, helper.name)
	end)
end)
