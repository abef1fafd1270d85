-- The minimal service used to measure newservice rate and memory per service.
local skynet = require "skynet"
skynet.start(function() end)
