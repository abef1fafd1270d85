-- sproto through skynet's own sproto.lua and sprotoloader.lua (the test's
-- lua_path finds copies of them first) on our sproto.core, with our
-- sprotoparser: the golden vectors, RPC, default, slots shared with
-- another service, and packets from message pointers.
-- Lines start with "t_sproto_skynet:"; the last one is "t_sproto_skynet: done".
local skynet = require "skynet"
require "skynet.manager"
local sproto = require "sproto"
local loader = require "sprotoloader"
local cases = require "sproto_cases"

local function log(...)
	skynet.error("t_sproto_skynet:", ...)
end

skynet.start(function()
	log("sproto.lua", package.searchpath("sproto", package.path))
	log("sprotoloader.lua", package.searchpath("sprotoloader", package.path))
	local sp, bin = cases.schema(log)
	cases.vectors(sp, log)

	local client, server = sp:host(), sp:host "package"
	local send = client:attach(sp)
	local t, name, args, resp, ud = server:dispatch(send("lookup", { id = 7 }, 11, 3))
	log("request", t, name, cases.show(args), type(resp), ud)
	local rt, rs, ra, ru = client:dispatch(resp({ id = 7, name = "Bob" }, 5))
	log("response", rt, rs, cases.show(ra), ru)
	t, name, args, resp = server:dispatch(send("notify", { msg = "hi" }, 13))
	log("notify response", client:dispatch(resp()))
	log("default", cases.show(sp:default "Person.PhoneNumber"), cases.show(sp:default("update", "RESPONSE")))
	local ok, e = pcall(sp.decode, sp, "Person", "\1")
	log("decode error", ok, tostring(e):match "decode error.*")

	loader.save(bin, 1)
	loader.register(cases.dir() .. "/addressbook.sproto", 2)
	local peer = skynet.newservice("t_sproto_peer")
	log("peer loads slot 1", skynet.call(peer, "lua", "load", 1))
	log("peer loads slot 2", skynet.call(peer, "lua", "load", 2))
	local shared = loader.load(2)
	log("shared here", cases.hex(shared:encode("Person", { id = 2 })))
	skynet.register_protocol { name = "client", id = skynet.PTYPE_CLIENT, pack = function(s) return s end }
	skynet.send(peer, "client", send("lookup", { id = 9 }, 1, 2))
	log("peer got", skynet.call(peer, "lua", "got"))
	log("done")
	skynet.abort()
end)
