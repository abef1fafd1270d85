-- skynet.netpack's Lua API: pack (string and pointer forms) against every
-- row of netpack.tsv (config `vectors` names the directory), tostring
-- freeing its block, the size limit, and pop/clear without a queue.
local skynet = require "skynet"
require "skynet.manager"
local netpack = require "skynet.netpack"

local T = "t_netpack"
local function say(fmt, ...)
	skynet.error(T .. ": " .. string.format(fmt, ...))
end

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
	return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

skynet.start(function()
	local dir = assert(skynet.getenv "vectors", "config vectors")
	local rows, good = 0, 0
	for line in io.lines(dir .. "/netpack.tsv") do
		if line:sub(1, 1) ~= "#" and line ~= "" then
			local desc, len, payload, framed = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$")
			rows = rows + 1
			if payload:sub(1, 9) == "(function" then
				payload = assert(load("return " .. payload))()
			else
				payload = unhex(payload)
			end
			local ptr, sz = netpack.pack(payload)
			-- the pointer form, on that block (still ours until tostring)
			local fine, p2, s2 = pcall(netpack.pack, ptr, sz)
			local got = netpack.tostring(ptr, sz)
			local again
			if fine then
				again = netpack.tostring(p2, s2) == string.pack(">s2", got)
			else
				again = #got > 65535 and p2:match("Invalid size %(too long%) of data : 65537$") ~= nil
			end
			local ok
			if framed:sub(1, 4) == "len=" then
				local n = tonumber(framed:match("^len=(%d+)"))
				ok = #got == n and got:sub(1, 4) == "\xff\xff\x00\x01" and got:sub(3) == payload
			else
				ok = hex(got) == framed
			end
			if ok and again and sz == #payload + 2 and tonumber(len) == #payload then
				good = good + 1
			else
				say("FAIL row %s", desc)
			end
		end
	end
	say("vectors %d of %d", good, rows)
	local ok, err = pcall(netpack.pack, string.rep("x", 65536))
	say("65536 %s %s", tostring(ok), tostring(err):match("Invalid size.*$"))
	local p, sz = netpack.pack("abc")
	netpack.tostring(p, sz)
	ok, err = pcall(netpack.tostring, p, sz)
	say("tostring twice %s", tostring(ok))
	say("tostring nil %q", netpack.tostring(nil, 0))
	say("pop nil %d", select("#", netpack.pop(nil)))
	netpack.clear(nil)
	ok, err = pcall(netpack.filter, nil, "not a message", 3)
	say("filter garbage %s", tostring(ok))
	say("done")
	skynet.abort()
end)
