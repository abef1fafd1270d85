-- snax global services across two harbors. Config `snax_role`:
--   host   (harbor 1, runs the master and SERVICE): starts the global
--          snax_counter, adds 7, says "ready", then keeps serving
--   guest  (harbor 2): finds it, uses it, and checks global launch/query
-- Lines start with "t_snax_global:"; the guest ends with "t_snax_global: done".
local skynet = require "skynet"
local snax = require "skynet.snax"
require "skynet.manager"

local function log(...)
	skynet.error("t_snax_global:", ...)
end

local function harbor_of(obj)
	return obj.handle >> 24
end

local function host()
	local g = snax.globalservice("snax_counter", "global1")
	g.post.add(7)
	log("ready", harbor_of(g), g.req.get())
end

local function guest()
	local q = snax.queryglobal "snax_counter"
	log("queryglobal", harbor_of(q), q.req.get())
	local again = snax.globalservice("snax_counter", "not again")
	log("globalservice same", again.handle == q.handle)
	q.post.add(1)
	log("after post", q.req.get())
	log("hotfix remote", snax.hotfix(q, "local n\nfunction hotfix() return n end"))
	log("profile remote", snax.profile_info(q).add.count)

	local u = snax.uniqueservice("snax_counter", "local2")
	log("unique is local", harbor_of(u), u.handle ~= q.handle, u.req.get())

	-- a global query made before the launch waits for it, also when the
	-- launch comes from this very node
	local queried
	skynet.fork(function()
		queried = snax.queryglobal "snax_plain"
	end)
	skynet.sleep(20)
	log("query waiting", queried == nil)
	local p = snax.globalservice "snax_plain"
	log("launched on", harbor_of(p), p.req.ping "hi")
	skynet.sleep(20)
	log("query woke", queried ~= nil and queried.handle == p.handle)

	local ok, err = pcall(snax.globalservice, "snax_missing")
	log("global missing", ok, tostring(err):find("snax_missing.lua", 1, true) ~= nil)
	ok, err = pcall(snax.queryglobal, "snax_missing")
	log("query missing", ok, tostring(err):find("snax_missing.lua", 1, true) ~= nil)

	snax.kill(q, "from 2")
	log("killed", pcall(q.req.get))
end

skynet.start(function()
	local role = skynet.getenv "snax_role"
	if role == "host" then
		host()
	else
		guest()
		log "done"
		skynet.abort()
	end
end)
