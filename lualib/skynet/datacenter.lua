-- skynet.datacenter: a process-wide (harbor-wide) tree of values kept by the
-- DATACENTER service (service/datacenterd.lua).
--
--   datacenter.set(k1, k2, ..., value)  stores value at the path, returns the old one
--   datacenter.get(k1, k2, ...)         value at the path (nil if absent)
--   datacenter.wait(k1, k2, ...)        like get, but blocks until a value is set

local skynet = require "skynet"

local DATACENTER = "DATACENTER"

local datacenter = {}

function datacenter.get(...)
	return skynet.call(DATACENTER, "lua", "QUERY", ...)
end

function datacenter.set(...)
	return skynet.call(DATACENTER, "lua", "UPDATE", ...)
end

function datacenter.wait(...)
	return skynet.call(DATACENTER, "lua", "WAIT", ...)
end

return datacenter
