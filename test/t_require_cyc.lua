-- A module for t_require: requires t_require_cyc2, which requires this one.
local skynet = require "skynet"
skynet.yield()
return { other = require "t_require_cyc2" }
