-- skynet.sharemap: a writer in this service, readers in two others. A reader
-- sees a commit after its next update(), never before; fields are read only
-- on the reader. Lines start with "t_sharemap:"; the last one is
-- "t_sharemap: done".
local skynet = require "skynet"
local sharemap = require "skynet.sharemap"
require "skynet.manager"

local mode = ...

local function show(obj)
	local pos = obj.pos and string.format("(%d,%d)", obj.pos.x or -1, obj.pos.y or -1) or "-"
	local tags = obj.tags and table.concat(obj.tags, "+") or "-"
	return string.format("%s hp=%s pos=%s tags=%s alive=%s",
		tostring(obj.name), tostring(obj.hp), pos, tags, tostring(obj.alive))
end

if mode == "reader" then
	local reader
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, ref)
			if cmd == "init" then
				reader = sharemap.reader("state", ref)
				skynet.ret(skynet.pack(show(reader)))
			elseif cmd == "peek" then
				skynet.ret(skynet.pack(show(reader)))
			elseif cmd == "update" then
				local changed = reader:update()
				skynet.ret(skynet.pack(changed, show(reader)))
			elseif cmd == "write" then
				skynet.ret(skynet.pack(pcall(function() reader.hp = 1 end)))
			end
		end)
	end)
	return
end

local function log(...)
	skynet.error("t_sharemap:", ...)
end

skynet.start(function()
	sharemap.register(skynet.getenv "root" .. "test/t_sharemap.sp")
	local w = sharemap.writer("state", { name = "orc", hp = 10, pos = { x = 1, y = 2 }, tags = { "a" } })
	log("writer reads", show(w))
	local r1 = skynet.newservice(SERVICE_NAME, "reader")
	local r2 = skynet.newservice(SERVICE_NAME, "reader")
	log("r1 init", skynet.call(r1, "lua", "init", w:copy()))
	w.hp = 7
	w.tags = { "a", "b" }
	log("r1 before commit", skynet.call(r1, "lua", "update"))
	w:commit()
	log("r1 peek", skynet.call(r1, "lua", "peek"))
	log("r1 update", skynet.call(r1, "lua", "update"))
	log("r1 update again", skynet.call(r1, "lua", "update"))
	log("r2 init", skynet.call(r2, "lua", "init", w:copy()))
	w.pos = { x = 5, y = 6 }
	w.alive = true
	w.name = nil
	w:commit()
	w.hp = 0
	w:commit()
	log("r2 update", skynet.call(r2, "lua", "update"))
	log("r1 update", skynet.call(r1, "lua", "update"))
	local ok, err = skynet.call(r1, "lua", "write")
	log("r1 write", ok, (err:match("read%-only %(can't set hp%)") ~= nil))
	w.hp = "lots"
	ok, err = pcall(w.commit, w)
	log("commit of a bad field", ok, (err:match("hp") ~= nil))
	log("r1 after bad commit", skynet.call(r1, "lua", "update"))
	log("done")
	skynet.abort()
end)
