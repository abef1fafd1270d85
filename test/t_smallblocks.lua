-- Small blocks through a state's allocator: the first ones come from the
-- state's own chunks, later ones from malloc, and blocks move between the two
-- as tables grow and shrink. Strings of every small length and tables grown
-- key by key must keep their contents through that, through frees and reuse,
-- and the allocator's count of bytes must stay equal to Lua's own.
-- Lines start with "t_smallblocks:"; the last one is "t_smallblocks: done".
local skynet = require "skynet"
local c = require "skynet.core"
require "skynet.manager"

local function say(...)
	skynet.error("t_smallblocks:", ...)
end

local ROUNDS, STEP, LONGEST, TABLES = 40, 7, 600, 200

local function letter(len)
	return 65 + len % 26
end

local function make_strings(keep)
	for round = 1, ROUNDS do
		for len = 1, LONGEST, STEP do
			keep[#keep + 1] = string.rep(string.char(letter(len)), len) .. round
		end
	end
end

local function strings_ok(keep)
	local n = 0
	for round = 1, ROUNDS do
		for len = 1, LONGEST, STEP do
			n = n + 1
			local s = keep[n]
			if s then
				local tail = tostring(round)
				if #s ~= len + #tail or s:byte(1) ~= letter(len) or s:byte(len) ~= letter(len)
					or s:sub(len + 1) ~= tail then
					return false, n
				end
			end
		end
	end
	return true, n
end

-- Table i holds i string keys and i integer keys, added one by one so its
-- parts are reallocated through every size up to i.
local function grow(i)
	local t = {}
	for k = 1, i do
		t["k" .. k] = k
		t[k] = -k
	end
	return t
end

local function table_ok(t, i)
	for k = 1, i do
		if t["k" .. k] ~= k or t[k] ~= -k then
			return false
		end
	end
	return true
end

local function tables_ok(grown)
	for i = 1, TABLES do
		if grown[i] and not table_ok(grown[i], i) then
			return false, i
		end
	end
	return true
end

skynet.start(function()
	local signal = skynet.address(skynet.self()) .. " 1"
	local keep, grown = {}, {}
	make_strings(keep)
	for i = 1, TABLES do
		grown[i] = grow(i)
	end
	say("strings", strings_ok(keep))
	say("tables", tables_ok(grown))

	-- Free every other object, then build again: freed blocks are reused.
	for i = 1, #keep, 2 do
		keep[i] = nil
	end
	for i = 1, TABLES, 2 do
		grown[i] = nil
	end
	collectgarbage "collect"
	local again = {}
	make_strings(again)
	for i = 1, TABLES, 2 do
		grown[i] = grow(i)
	end
	say("after reuse", strings_ok(keep), strings_ok(again), tables_ok(grown))

	-- Shrink: tables emptied and rehashed to smaller parts.
	for i = 2, TABLES, 2 do
		local t = grown[i]
		for k = 1, i do
			t["k" .. k] = nil
			t[k] = nil
		end
		t.x = 1
		collectgarbage "step"
	end
	local empty = true
	for i = 2, TABLES, 2 do
		if next(grown[i]) ~= "x" or next(grown[i], "x") ~= nil then
			empty = false
		end
	end
	say("shrunk", empty)

	keep, grown, again = nil, nil, nil
	collectgarbage "collect"
	local kb = collectgarbage "count"
	c.command("SIGNAL", signal)	-- logs "Current Memory <allocator's count>K"
	say(string.format("lua count %.3fK", kb))
	say "done"
	skynet.abort()
end)
