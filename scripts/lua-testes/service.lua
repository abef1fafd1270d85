-- Runs Lua's test suite (all.lua in the node's working directory, a testes
-- folder) inside this service, for scripts/lua-testes.sh --node. all.lua
-- loads most files with loadfile, which is the code cache's here: they run
-- as closures of prototypes shared by the process, with shared strings.
-- Then it ends the node.
local skynet = require "skynet"
require "skynet.manager"
local G, pairs, rawset, print, tostring = _G, pairs, rawset, print, tostring
local traceback, sethook = debug.traceback, debug.sethook

-- all.lua erases every global at its end: skynet's code still needs them.
local saved = {}
for k, v in pairs(_G) do
	saved[k] = v
end
-- Lua's own require: skynet.require (the global here) calls it from a Lua
-- function, so its "module not found" message gets a position prefix, and
-- attrib.lua compares that message exactly.
local wrapped = require
local i = 1
while true do
	local name, value = debug.getupvalue(wrapped, i)
	assert(name, "lua-testes: no plain_require upvalue in skynet.require")
	if name == "plain_require" then
		_G.require = value
		break
	end
	i = i + 1
end
-- The code cache never re-reads a file it cached (as skynet's), but the
-- suite writes one temporary file (os.tmpname, an absolute name) again and
-- again and loads it each time: forget the cache before loading one.
local codecache = require "skynet.codecache"
local cached_loadfile, find = loadfile, string.find
_G.loadfile = function(name, ...)
	if type(name) == "string" and find(name, "^/") then
		codecache.clear()
	end
	return cached_loadfile(name, ...)
end
-- A service's first load of a file compiles it itself (and caches it);
-- later loads get closures of the shared prototype. Load each file once
-- first, so that the run gets shared ones where all.lua calls loadfile
-- directly (all.lua, gc.lua; require "tracegc"). The files all.lua runs
-- through string.dump and load are private copies, whose strings are still
-- the shared ones.
for _, name in ipairs { "all", "api", "attrib", "big", "bitwise", "bwcoercion",
	"calls", "closure", "code", "constructs", "coroutine", "cstack", "db",
	"errors", "events", "files", "gc", "gengc", "goto", "heavy", "literals",
	"locals", "main", "math", "memerr", "nextvar", "pm", "sort", "strings",
	"tpack", "tracegc", "utf8", "vararg", "verybig" } do
	assert(cached_loadfile(name .. ".lua"))
end
_U = true
-- A main chunk runs with the collector stopped (as in skynet's snlua, which
-- restarts it in generational mode afterwards): start it as Lua's
-- interpreter does.
collectgarbage("restart")
collectgarbage("generational")
local ok, err = xpcall(assert(loadfile("all.lua")), traceback)
sethook()  -- all.lua leaves a hook on
for k, v in pairs(saved) do
	rawset(G, k, v)
end
_G.require = wrapped
_G.loadfile = cached_loadfile
if not ok then
	print("lua-testes: all.lua failed: " .. tostring(err))
end
skynet.start(function()
	skynet.abort()
end)
