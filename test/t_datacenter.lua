-- skynet.datacenter: set / get / wait, waiting on a branch.
-- Lines start with "t_datacenter:"; the last one is "t_datacenter: done".
local skynet = require "skynet"
local datacenter = require "skynet.datacenter"
require "skynet.manager"

local function log(...)
	skynet.error("t_datacenter:", ...)
end

skynet.start(function()
	log("set new", tostring((datacenter.set("hello", "world"))))
	log("get", datacenter.get("hello"))
	log("set old", datacenter.set("hello", "again"))
	datacenter.set("a", "b", "c", 42)
	log("deep get", datacenter.get("a", "b", "c"), type(datacenter.get("a")), type(datacenter.get("a", "b")))
	log("missing", tostring((datacenter.get("nope"))), tostring((datacenter.get("a", "x"))))
	-- paths that go on below a missing branch or below a leaf value
	local function try_get(...)
		local ok, value = pcall(datacenter.get, ...)
		return tostring(ok) .. " " .. tostring(value)
	end
	log("below missing", try_get("a", "missing", "deeper"))
	log("below missing top", try_get("nope", "missing", "deeper"))
	log("below leaf", try_get("a", "b", "c", "d", "e"))
	log("still serving", datacenter.get("a", "b", "c"))
	log("wait existing", datacenter.wait("a", "b", "c"))

	local seq = {}
	skynet.fork(function()
		local v = datacenter.wait("later", "key")
		seq[#seq + 1] = "waited:" .. tostring(v)
	end)
	skynet.fork(function()
		local v = datacenter.wait("later", "key")
		seq[#seq + 1] = "waited2:" .. tostring(v)
	end)
	skynet.sleep(5)
	seq[#seq + 1] = "set"
	datacenter.set("later", "key", "value")
	skynet.sleep(5)
	log("wait order", table.concat(seq, " "))

	-- a waiter on "tree" fails when a deeper key, "tree"."leaf", is set
	seq = {}
	skynet.fork(function()
		local ok, err = pcall(datacenter.wait, "tree")
		seq[#seq + 1] = "branch:" .. tostring(ok) .. ":" .. tostring(tostring(err):match("call failed$"))
	end)
	skynet.sleep(5)
	seq[#seq + 1] = "set"
	datacenter.set("tree", "leaf", 1)
	skynet.sleep(5)
	log("branch wait", table.concat(seq, " "), datacenter.wait("tree", "leaf"))

	datacenter.set("hello", nil)
	log("cleared", tostring((datacenter.get("hello"))))
	log "done"
	skynet.abort()
end)
