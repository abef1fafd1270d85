-- Service loader, run by snlua with the launch arguments as one string.
-- Globals set by snlua: LUA_PATH, LUA_CPATH, LUA_SERVICE, LUA_PRELOAD.
local argv = {}
for word in string.gmatch(..., "%S+") do
	argv[#argv + 1] = word
end
local name = argv[1]
SERVICE_NAME = name

-- Find the service's main chunk: try each ';'-separated LUA_SERVICE pattern
-- ('?' stands for the service name); the first file that compiles wins.
-- If none does, fail with every loadfile error, one per line.
local main, found
local failures = {}
for pattern in string.gmatch(LUA_SERVICE, "([^;]+);*") do
	local chunk, why = loadfile((string.gsub(pattern, "?", name)))
	if chunk then
		main, found = chunk, pattern
		break
	end
	failures[#failures + 1] = why
end
if not main then
	error(table.concat(failures, "\n"))
end

LUA_SERVICE = nil
package.path, LUA_PATH = LUA_PATH, nil
package.cpath, LUA_CPATH = LUA_CPATH, nil

-- A pattern like "dir/?/main.lua" makes the service a directory: its own
-- modules become requirable.  Otherwise SERVICE_PATH is the pattern's folder.
-- (One left-anchored match finds the last '/': patterns that backtrack from
-- every '/' cost more than the rest of the loader.)
local dir, last = string.match(found, "^(.*/)(.*)$")
if dir and last ~= "" and not string.find(last, "?", 1, true) then
	local service_dir = string.gsub(dir, "?", name)
	package.path = service_dir .. "?.lua;" .. package.path
	SERVICE_PATH = service_dir
elseif dir and last ~= "" then
	SERVICE_PATH = dir
else	-- no '/', or a pattern ending in '/': the folder before its last part
	SERVICE_PATH = string.match(found, "(.*/).+$")
end

if LUA_PRELOAD then
	local preload = assert(loadfile(LUA_PRELOAD))
	preload(table.unpack(argv))
	LUA_PRELOAD = nil
end

_G.require = (require "skynet.require").require

main(select(2, table.unpack(argv)))
