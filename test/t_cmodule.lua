-- A C Lua module (test/cmod/ctest.c, built by node/tests/cmodule.rs) loaded
-- through lua_cpath. Lines start with "t_cmodule:"; the last one is
-- "t_cmodule: done".
local skynet = require "skynet"
require "skynet.manager"

local function log(...)
	skynet.error("t_cmodule:", ...)
end

skynet.start(function()
	local ok, ctest = pcall(require, "ctest")
	if not ok then
		log("require failed", ctest)
		log("done")
		skynet.abort()
		return
	end
	log("version", ctest.lua_version)
	log("add", ctest.add(40, 2))
	log("describe", ctest.describe(1, "x", {}, nil, true))
	local ok, err = pcall(ctest.add, "a", 1)
	log("bad argument", ok, err)
	ok, err = pcall(ctest.fail, "on purpose")
	log("error", ok, err)
	log("map", table.concat(ctest.map({1, 2, 3}, function(v) return v * 10 end), ","))
	ok, err = pcall(ctest.map, {1}, function() error("inside callback") end)
	log("callback error", ok, err)
	local c = ctest.counter(5)
	c:incr()
	log("counter", c:incr(), c:get())
	c = nil
	for _ = 1, 100 do ctest.counter() end
	collectgarbage()
	collectgarbage()
	log("collected", ctest.collected() >= 100)
	log("same module", require "ctest" == ctest)
	ok, err = pcall(require, "ctest_missing")
	log("missing module", ok, (err:match("module 'ctest_missing' not found") ~= nil))
	ok, err = pcall(require, "ctest_broken")
	log("broken module", ok, err)
	log("done")
	skynet.abort()
end)
