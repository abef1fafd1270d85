-- The loader's SERVICE_NAME / SERVICE_PATH, for a plain file and for a
-- service that is a directory. Paths are printed relative to the test folder.
-- Lines start with "t_loader:"; the last one is "t_loader: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_loader:", ...)
end

local function rel(path)
	return (string.gsub(path, "^.*/test/", "test/"))
end

skynet.start(function()
	log("file", SERVICE_NAME, rel(SERVICE_PATH))
	local dir = skynet.newservice("t_loader_dir")
	local name, path, helper = skynet.call(dir, "lua")
	log("dir", name, rel(path), helper)
	log "done"
	skynet.abort()
end)
