-- skynet.snax on one node: objects, both kinds of methods, errors, profile,
-- hotfix, unique services, bind, self, kill and exit. The snax services are
-- in test/snax/ (config `snax`); snaxd loads them through test/snax_loader.lua
-- (config `snax_loader`).
-- Lines start with "t_snax:"; the last one is "t_snax: done".
local skynet = require "skynet"
local snax = require "skynet.snax"
require "skynet.manager"

local function log(...)
	skynet.error("t_snax:", ...)
end

-- "k=v k=v" sorted by key
local function ids(map)
	local keys = {}
	for k in pairs(map) do
		keys[#keys + 1] = k
	end
	table.sort(keys)
	for i, k in ipairs(keys) do
		keys[i] = k .. "=" .. tostring(map[k])
	end
	return table.concat(keys, " ")
end

-- ok flag and the error's last line without the position prefix
local function try(f, ...)
	local ok, err = pcall(f, ...)
	if ok then
		return "ok"
	end
	err = tostring(err):match("([^\n]*)") -- first line
	return "error " .. (err:match("^[^:]*:%d+: (.*)$") or err)
end

local function values(...)
	local t = table.pack(...)
	for i = 1, t.n do
		t[i] = tostring(t[i])
	end
	return t.n .. ":" .. table.concat(t, ",", 1, t.n)
end

local function interface()
	local t = snax.interface "snax_counter"
	log("interface", t.name, rawequal(t, snax.interface "snax_counter"))
	log("system", ids(t.system))
	log("accept", ids(t.accept))
	log("response", ids(t.response))
	log("bad type", try(snax.interface, "snax_bad_type"))
	log("bad dup", try(snax.interface, "snax_bad_dup"))
	log("bad init", try(snax.interface, "snax_bad_init"))
	local ok, err = pcall(snax.interface, "snax_missing")
	log("missing file", ok, err:find("snax/snax_missing.lua", 1, true) ~= nil)
	log("missing service", pcall(snax.newservice, "snax_missing"))
	snax.printf("t_snax: printf %d %s", 7, "x")
end

local function methods()
	local c = snax.newservice("snax_counter", "first", nil, 3)
	log("tostring", tostring(c) == string.format("[snax_counter:%x]", c.handle), c.type)
	log("post returns", select("#", c.post.add(5)))
	log("req get", c.req.get())
	for _ = 1, 100 do
		c.post.add(1)
	end
	log("after 100 posts", c.req.get())
	log("echo", values(c.req.echo(1, nil, "x", false)))
	log("echo none", values(c.req.echo()))
	log("req on accept", try(function() return c.req.add end))
	log("post on response", try(function() return c.post.get end))
	log("unknown method", try(function() return c.req.nothing end))
	log("response error", try(c.req.fail, "boom"))
	c.post.fail("quiet")
	log("alive after errors", c.req.get())
	log("whoami", values(select(2, c.req.whoami())))
	log("whoami matches", (c.req.whoami()) == tostring(c))
	log("helper", c.req.helper())
	-- snax.enablecluster() in init: the methods answer on protocol lua too
	local t = snax.interface "snax_counter"
	log("lua protocol", skynet.call(c.handle, "lua", t.response.get))
	log("bind cached", rawequal(snax.bind(c.handle, "snax_counter"), c))
	log("bind other type", (string.gsub(try(snax.bind, c.handle, "snax_plain"), tostring(c.handle), "<handle>")))

	local t0 = skynet.now()
	c.req.slow(10)
	local wall = (skynet.now() - t0) / 100
	local prof = snax.profile_info(c)
	log("profile", prof.add.count, prof.get.count, prof.echo.count, prof.fail.count, prof.slow.count,
		prof.whoami.count, prof.helper.count)
	log("profile times", math.type(prof.get.time) == "float", prof.get.time >= 0,
		wall >= 0.1, prof.slow.time < 0.05)
	local info = skynet.call(c.handle, "debug", "INFO")
	log("debug info", info.add.count, info.get.count)

	snax.kill(c, "bye", 1)
	log("killed")
	log("after kill", pcall(c.req.get))
end

local function hotfix()
	local c = snax.newservice("snax_counter", "hot")
	c.post.add(5)
	log("before hotfix", c.req.get())
	log("hotfix returns", values(snax.hotfix(c, [[
local n
local bump
local tenfold = 10

function accept.add(v)
	bump(v * tenfold)
end

function response.get()
	return n, LABEL
end

function hotfix(a, b)
	return n, a + b
end
]], 1, 2)))
	c.post.add(2)
	log("after hotfix", c.req.get())
	log("mismatch", try(snax.hotfix, c, "function response.nothere() end"))
	local ok, err = pcall(snax.hotfix, c, "function (")
	log("syntax", ok, tostring(err):find("patch:1:", 1, true) ~= nil)
	log("patch error", try(snax.hotfix, c, "function hotfix() error('nope') end"))
	log("no hotfix function", values(snax.hotfix(c, "local n\nfunction response.echo(...) return n, ... end")))
	log("echo patched", values(c.req.echo("e")))
	-- a patch with a recursive local function
	log("recursive patch", try(snax.hotfix, c, [[
local n
local function fact(k)
	if k <= 1 then
		return 1
	end
	return k * fact(k - 1)
end
function response.echo(...)
	return fact(4), n, ...
end
]]))
	log("echo recursive", values(c.req.echo("r")))
	log("state kept", c.req.get())
	local prof = snax.profile_info(c)
	log("profile after hotfix", prof.add.count, prof.get.count)
	c.post.quit("by itself")
	skynet.sleep(10)
	log("after exit", pcall(c.req.get))
end

local function raw()
	local t = snax.interface "snax_counter"
	local h = skynet.newservice("snaxd", "snax_counter")
	log("before init", try(skynet.call, h, "snax", t.response.get))
	log("post before init", try(skynet.send, h, "snax", t.accept.add, 1))
	skynet.call(h, "snax", t.system.init, "late")
	log("init later", skynet.call(h, "snax", t.response.get))
	log("init twice", try(skynet.call, h, "snax", t.system.init, "again"))
	log("bad id", try(skynet.call, h, "snax", 99))
	local c = snax.bind(h, "snax_counter")
	log("bound", c.req.get(), rawequal(snax.bind(h, "snax_counter"), c))
	snax.kill(c)

	local p = snax.newservice("snax_plain")
	log("plain", p.req.ping("x"))
	snax.kill(p, "no exit function")
	log("plain killed", pcall(p.req.ping))
end

local function unique()
	-- a query before the launch waits for it
	local queried
	skynet.fork(function()
		queried = snax.queryservice "snax_plain"
	end)
	local u = snax.uniqueservice("snax_counter", "unique")
	local again = snax.uniqueservice("snax_counter", "ignored")
	log("unique same", u.handle == again.handle, rawequal(u, again))
	u.post.add(7)
	log("query", snax.queryservice("snax_counter").handle == u.handle)
	skynet.sleep(5)
	log("query waiting", queried == nil)
	local p = snax.uniqueservice "snax_plain"
	skynet.sleep(5)
	log("query woke", queried ~= nil and queried.handle == p.handle)
	-- another service sees the same one, and can bind a handle it is given
	local peer = skynet.newservice "t_snax_peer"
	log("peer", skynet.call(peer, "lua", u.handle) == u.handle)
	log("peer read", u.req.get())
	log("unique missing", try(snax.uniqueservice, "snax_missing"))
	log("query missing", try(snax.queryservice, "snax_missing"))
	-- global services on a single node are kept by the same service_mgr
	local g = snax.globalservice("snax_counter", "global")
	log("global distinct", g.handle ~= u.handle, snax.queryglobal("snax_counter").handle == g.handle)
	local list = skynet.call(".service", "lua", "LIST")
	log("list", list["snaxd.snax_counter"] == skynet.address(u.handle),
		list["@snaxd.snax_counter"] == skynet.address(g.handle),
		list["snaxd.snax_plain"] == skynet.address(p.handle))
end

skynet.start(function()
	interface()
	methods()
	hotfix()
	raw()
	unique()
	log "done"
	skynet.abort()
end)
