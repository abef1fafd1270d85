-- skynet.stm across services: readers in other services see each new
-- version once (skipping those published between two reads), versions and
-- objects are freed when nobody holds them, bad pointers are errors.
-- Lines start with "t_stm:"; the last one is "t_stm: done".
local skynet = require "skynet"
local stm = require "skynet.stm"
require "skynet.manager"

local mode = ...

if mode == "reader" then
	local reader
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, copy)
			if cmd == "take" then
				reader = stm.newcopy(copy)
				skynet.ret(skynet.pack(true))
			elseif cmd == "take again" then
				skynet.ret(skynet.pack(pcall(stm.newcopy, copy)))
			elseif cmd == "read" then
				skynet.ret(skynet.pack(reader(skynet.unpack)))
			elseif cmd == "drop" then
				reader = nil
				collectgarbage()
				collectgarbage()
				skynet.ret(skynet.pack(true))
			end
		end)
	end)
	return
end

local function log(...)
	skynet.error("t_stm:", ...)
end

local function joined(...)
	local t = table.pack(...)
	for i = 1, t.n do
		t[i] = tostring(t[i])
	end
	return table.concat(t, " ")
end

-- Every reader reads once; their answers, "|"-separated.
local function read_all(readers)
	local r = {}
	for i, addr in ipairs(readers) do
		r[i] = joined(skynet.call(addr, "lua", "read"))
	end
	return table.concat(r, " | ")
end

local objects0, blocks0 = stm.live()
local function held()
	local objects, blocks = stm.live()
	return string.format("objects %d blocks %d", objects - objects0, blocks - blocks0)
end

skynet.start(function()
	local writer = stm.new(skynet.pack("v", 1))
	local readers = {}
	for i = 1, 3 do
		readers[i] = skynet.newservice("t_stm", "reader")
		skynet.call(readers[i], "lua", "take", stm.copy(writer))
	end
	log("first", read_all(readers))
	log("unchanged", read_all(readers))
	writer(skynet.pack("v", 2))
	writer(skynet.pack("v", 3, { big = string.rep("x", 100000) }))
	-- v1 is held by the readers (read last), v3 by the writer; v2 is gone
	log("held after updates", held())
	local r = {}
	for i, addr in ipairs(readers) do
		local ok, v, n, t = skynet.call(addr, "lua", "read")
		r[i] = joined(ok, v, n, #t.big)
	end
	log("latest", table.concat(r, " | "))
	log("held after reads", held())

	-- pointers that are not a copy waiting to be taken
	local copy = stm.copy(writer)
	local spare = skynet.newservice("t_stm", "reader")
	skynet.call(spare, "lua", "take", copy)
	local ok, err = skynet.call(spare, "lua", "take again", copy)
	log("copy taken twice", ok, err)
	local p, sz = skynet.pack("not an stm object")
	ok, err = pcall(stm.newcopy, p)
	skynet.trash(p, sz)
	log("forged pointer", ok, err)
	ok, err = pcall(stm.newcopy, "text")
	log("not a pointer", ok, err)
	ok, err = pcall(stm.new, {})
	log("bad version", ok, err)
	ok, err = pcall(writer, 42, 1)
	log("bad update", ok, err)

	-- a reader that exits releases what it holds
	skynet.call(spare, "lua", "read")
	writer(skynet.pack("v", 4))
	log("v4", read_all(readers))
	log("held while the spare keeps v3", held())
	skynet.kill(spare)
	-- its state is closed by a worker soon after: wait for that (at most 3 s)
	for _ = 1, 60 do
		if held() == "objects 1 blocks 1" then
			break
		end
		skynet.sleep(5)
	end
	log("held after a reader exits", held())

	-- the writer goes: readers see no new version and drop the last one
	writer = nil
	collectgarbage()
	collectgarbage()
	log("writer gone", read_all(readers))
	log("held by readers only", held())
	for _, addr in ipairs(readers) do
		skynet.call(addr, "lua", "drop")
	end
	log("held at the end", held())
	log("done")
	skynet.abort()
end)
