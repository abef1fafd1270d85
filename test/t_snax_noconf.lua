-- skynet.snax on a node whose config has no `snax` key.
-- Lines start with "t_snax_noconf:"; the last one is "t_snax_noconf: done".
local skynet = require "skynet"
local snax = require "skynet.snax"
require "skynet.manager"

skynet.start(function()
	local ok, err = pcall(snax.newservice, "snax_counter")
	skynet.error("t_snax_noconf: newservice", ok, tostring(err):match("please set snax in config file$") ~= nil)
	skynet.error "t_snax_noconf: done"
	skynet.abort()
end)
