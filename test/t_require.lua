-- skynet.require: module bodies and skynet.init functions run in order;
-- concurrent requires of a module that blocks load it once; cycles fail.
-- Lines start with "t_require:"; the last one is "t_require: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_require:", ...)
end

skynet.init(function()
	log "main init 1"
end)
local mod = require "t_require_mod"
log("main chunk", mod.name)
skynet.init(function()
	log "main init 2"
end)

skynet.start(function()
	log "start"
	local got = {}
	for i = 1, 2 do
		skynet.fork(function()
			got[i] = require "t_require_slow"
			log("fork got", i, got[i].name)
		end)
	end
	skynet.sleep(20)
	log("same module", got[1] == got[2], package.loaded.t_require_slow == got[1])
	log("require again", require "t_require_mod" == mod)

	local ok, err = pcall(require, "t_require_cyc")
	log("cycle", ok, tostring(err):match("circular dependency") ~= nil)
	ok, err = pcall(require, "t_require_no_such_module")
	log("missing", ok, tostring(err):match("module 't_require_no_such_module' not found") ~= nil)
	log "done"
	skynet.abort()
end)
