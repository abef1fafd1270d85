-- sproto through our lualib: golden vectors, the host/attach/dispatch RPC
-- flow, default, the sprotoloader slots shared with another service,
-- packets read from message pointers, and errors for bad arguments,
-- malformed packets and bad schemas.
-- Lines start with "t_sproto:"; the last one is "t_sproto: done".
local skynet = require "skynet"
require "skynet.manager"
local sproto = require "sproto"
local parser = require "sprotoparser"
local loader = require "sprotoloader"
local core = require "sproto.core"
local cases = require "sproto_cases"

local check, same, show = cases.check, cases.same, cases.show

local function log(...)
	skynet.error("t_sproto:", ...)
end

-- The error of f(...), or "no error".
local function err(f, ...)
	local ok, e = pcall(f, ...)
	if ok then
		return "no error"
	end
	return tostring(e)
end

local function has(text, part)
	return text:find(part, 1, true) ~= nil
end

local function errors(sp)
	log("type error", err(sp.encode, sp, "Person", { id = "x" }):match "Person%.id%[0%].*")
	log("array error", err(sp.encode, sp, "Person", { scores = { 1, 2, "z" } }):match "Person%.scores%[3%].*")
	log("bool error", err(sp.encode, sp, "Person", { flags = { 1 } }):match "Person%.flags%[1%].*")
	log("string error", err(sp.encode, sp, "Person", { name = 42 }):match "Person%.name%[0%].*")
	log("struct error", err(sp.encode, sp, "Person", { phone = { 5 } }):match "Person%.phone%[1%].*")
	log("container error", err(sp.encode, sp, "Person", { tags = "abc" }):match "Person%.tags.*")
	log("not a table", err(sp.encode, sp, "Person", nil):match "bad argument.*")
	local loop = {}
	loop.friends = { loop }
	loop.id = 1
	log("too deep", err(sp.encode, sp, "Person", { others = {}, friends = { [1] = loop } }):match "The table is too deep")
	log("too large", err(sp.encode, sp, "Person", { data = string.rep("x", 0x1000000) }):match "object is too large.*")
	log("bad type arg", err(core.encode, "Person", {}):match "bad argument #1.*")
	log("forged type", err(core.encode, io.stdout, {}):match "bad argument #1.*")
	log("sproto as type", err(core.decode, sp.__cobj, ""):match "bad argument #1.*")
	log("type as sproto", err(core.querytype, sp.__tcache.Person or core.querytype(sp.__cobj, "Person"), "x"):match "bad argument #1.*")
	log("unknown type", err(sp.encode, sp, "Nope", {}))
	log("unknown proto", err(sp.request_encode, sp, "nope", {}))
	log("decode short", err(sp.decode, sp, "Person", "\1"):match "decode error.*")
	log("decode overrun", err(sp.decode, sp, "Person", "\1\0\0\0\9\0\0\0a"):match "decode error.*")
	log("decode arg", err(sp.decode, sp, "Person", {}):match "sproto.decode: .*")
	log("unpack short", err(sproto.unpack, "\255"):match "Invalid unpack stream")
	log("unpack arg", err(sproto.unpack, nil):match "sproto.unpack: .*")
	local host = sp:host()
	log("dispatch garbage", err(host.dispatch, host, sproto.pack "\1\0\0\0\9"):match "decode error.*")
	log("unknown session", err(host.dispatch, host, sproto.pack(sp:encode("package", { session = 99 }))):match "Unknown session")
	log("newproto garbage", err(sproto.new, "\3\0\1"):match "invalid sproto schema.*")
	log("bad schema", err(parser.parse, ".A {\n a 0 : integer\n b 0 : string\n}"))
	log("syntax", err(parser.parse, ".A {\n a 0 integer\n}", "a.sproto"))
	log("slot range", err(core.saveproto, sp.__cobj, 16):match "Invalid global slot index 16")
	log("empty slot", err(core.loadproto, 15):match "nil sproto at index 15")
	-- a stale message pointer
	local msg, sz = skynet.pack("x")
	skynet.trash(msg, sz)
	log("stale pointer", err(sp.decode, sp, "Person", msg, sz):match "invalid pointer.*")
end

local function rpc(sp)
	local client, server = sp:host(), sp:host "package"
	local send = client:attach(sp)
	-- request + response with a session and ud
	local t, name, args, resp, ud = server:dispatch(send("lookup", { id = 7, name = "x" }, 11, 3))
	log("request", t, name, show(args), type(resp), ud)
	local t2, session, rargs, rud = client:dispatch(resp({ name = "Bob", id = 7, phone = { { number = "1", type = 2 } } }, 5))
	log("response", t2, session, show(rargs), rud)
	-- no session: no responder, no pending session
	t, name, args, resp, ud = server:dispatch(send("lookup", { id = 8 }))
	log("one-way", t, name, show(args), tostring(resp), tostring(ud))
	-- a protocol without request or response types
	t, name, args, resp = server:dispatch(send("ping", nil, 12))
	log("ping", t, name, tostring(args), type(resp))
	log("ping response", client:dispatch(resp()))
	-- response nil: answered, without content; a response value is refused
	t, name, args, resp = server:dispatch(send("notify", { msg = "hi" }, 13))
	log("notify", t, name, show(args), type(resp))
	log("notify with value", err(resp, { x = 1 }):match "bad argument #2.*")
	log("notify response", client:dispatch(resp()))
	-- the same session twice is an unknown session the second time
	local pkt = resp()
	log("stale session", err(client.dispatch, client, pkt):match "Unknown session")
	-- request/response encode and decode by name and by tag
	local body, tag = sp:request_encode("update", { others = { { id = 1 } } })
	log("request_encode", tag, show((sp:request_decode(tag, body))), select(2, sp:request_decode("update", body)))
	local rb = sp:response_encode("update", { ok = true, count = 2 })
	log("response_decode", show((sp:response_decode("update", rb))))
	log("ping encode", sp:request_encode("ping") == "", (sp:request_decode("ping", "")), select(2, sp:request_decode("ping", "")))
	log("queryproto", sp:queryproto("notify").tag, sp:queryproto(4).name, sp:exist_proto("lookup"), sp:exist_proto("nope"), sp:exist_type("Person.PhoneNumber"), sp:exist_type("Nope"))
	-- decoding into a given table
	local into = { stale = true }
	local got, used = sp:decode("Person", sp:encode("Person", { id = 3 }), into)
	log("decode into", got == into, show(into), used)
end

-- Metamethods are honoured; an encode run from a metamethod of another
-- encode gets a buffer of its own; an error raised by a metamethod
-- propagates and leaves the module usable.
local function metamethods(sp)
	local inner
	local lazy = setmetatable({}, { __index = function(_, k)
		if k == "name" then
			inner = cases.hex(sp:encode("Person", { id = 5 }))
			return "lazy"
		end
	end })
	local outer = sp:encode("Person", lazy)
	log("nested encode", cases.hex(outer) == cases.hex(sp:encode("Person", { name = "lazy" })), inner)
	local proxy = setmetatable({}, { __pairs = function() return next, { [3] = { id = 3 } }, nil end })
	log("pairs", show((sp:decode("Person", sp:encode("Person", { friends = proxy })))))
	local bad = setmetatable({}, { __index = function() error "boom" end })
	log("metamethod error", err(sp.encode, sp, "Person", bad):match "boom")
	log("after error", cases.hex(sp:encode("Person", { id = 1 })))
end

local function defaults(sp)
	local d = sp:default "Person"
	log("default", show { d.name, d.id, d.height, d.weight, d.alive, d.data, d.phone, d.friends })
	log("default types", math.type(d.id), math.type(d.height), math.type(d.weight))
	log("default request", show(sp:default("lookup", "REQUEST")), tostring((sp:default("ping", "REQUEST"))))
	log("default response", show(sp:default("update", "RESPONSE")))
	log("default bad", err(sp.default, sp, "lookup", "X"):match "Invalid type")
end

skynet.start(function()
	local sp, bin = cases.schema(log)
	cases.vectors(sp, log)
	rpc(sp)
	defaults(sp)
	metamethods(sp)
	errors(sp)

	-- a deleted schema: its object refuses, types handed out earlier still work
	local sp2 = sproto.new(bin)
	local person = core.querytype(sp2.__cobj, "Person")
	log("same type object", person == core.querytype(sp2.__cobj, "Person"))
	core.deleteproto(sp2.__cobj)
	log("deleted", err(core.querytype, sp2.__cobj, "Person"):match "bad argument #1.*")
	log("type survives", cases.hex(core.encode(person, { id = 1 })))

	-- dumps on stdout
	core.dumpproto(sp.__cobj)
	parser.dump(bin:sub(1, 20))

	-- sprotoloader: a slot written here is read by another service
	loader.save(bin, 1)
	loader.register(cases.dir() .. "/addressbook.sproto", 2)
	local peer = skynet.newservice("t_sproto_peer")
	log("peer loads slot 1", skynet.call(peer, "lua", "load", 1))
	log("peer loads slot 2", skynet.call(peer, "lua", "load", 2))
	local shared = loader.load(1)
	log("shared here", cases.hex(shared:encode("Person", { id = 2 })))
	loader.save(parser.parse ".Other { x 0 : integer }", 1)
	log("peer sees replaced slot", skynet.call(peer, "lua", "load", 1))
	log("old shared object still works", cases.hex(shared:encode("Person", { id = 2 })))

	-- packets as message pointers: the peer dispatches them from msg, sz
	skynet.register_protocol { name = "client", id = skynet.PTYPE_CLIENT, pack = function(s) return s end }
	local send = sp:host():attach(sp)
	skynet.send(peer, "client", send("lookup", { id = 9, name = "p" }, 1, 2))
	skynet.send(peer, "client", send("notify", { msg = "m" }))
	log("peer got", skynet.call(peer, "lua", "got"))
	log("done")
	skynet.abort()
end)
