-- snax.interface: runs a snax service file and lists the methods it defines.
--
--   local methods, pattern = require "snax.interface" (name, G[, loader])
--
-- The file `name` is looked up on the config key `snax` (';'-separated
-- patterns, '?' stands for the name) and run with G as its global table.
-- While it runs:
--   accept.<f> = function     declares a method answered by nobody (post)
--   response.<f> = function   declares a method whose results are replied (req)
--   init / exit / hotfix / profile (as globals) declare the system functions
--   any other new global is held aside and stored into G once the file is done
-- so the `accept`/`response` tables never become globals of G.
--
-- `methods` is indexed by method id; each entry is { id, group, name, f }.
-- Ids 1..4 are the system functions init, exit, hotfix, profile (f is nil
-- when the file does not define one); the accept and response methods follow,
-- in the order the file defines them, from id 5 on. `pattern` is the path
-- pattern the file was found by. A custom loader(path, name, G) returns the
-- file's main chunk and its pattern (snaxd takes one from config `snax_loader`).

local skynet = require "skynet"

local SYSTEM = { "init", "exit", "hotfix", "profile" }
local system_id = {}
for id, name in ipairs(SYSTEM) do
	system_id[name] = id
end

-- Tries every pattern of `path`; fails with every loadfile error, one a line.
local function load_from_path(path, name, G)
	local failures = {}
	for pattern in string.gmatch(path, "[^;]+") do
		local filename = string.gsub(pattern, "?", function() return name end)
		local chunk, err = loadfile(filename, "bt", G)
		if chunk then
			return chunk, pattern
		end
		failures[#failures + 1] = err
	end
	error(table.concat(failures, "\n"))
end

-- The `accept` or `response` table seen by the file: assigning a field
-- appends a method to `methods`.
local function declarer(methods, group)
	local declared = {}
	return setmetatable({}, {
		__newindex = function(_, name, f)
			if type(name) ~= "string" then
				error(string.format("%s method only support string", group), 2)
			end
			if type(f) ~= "function" then
				error(string.format("%s.%s must be function", group, name), 2)
			end
			if declared[name] then
				error(string.format("%s.%s duplicate definition", group, name), 2)
			end
			declared[name] = true
			local id = #methods + 1
			methods[id] = { id, group, name, f }
		end,
	})
end

return function(name, G, loader)
	loader = loader or load_from_path
	assert(getmetatable(G) == nil)
	assert(G.init == nil)
	assert(G.exit == nil)
	assert(G.accept == nil)
	assert(G.response == nil)

	local methods = {}
	for id, sys in ipairs(SYSTEM) do
		methods[id] = { id, "system", sys }
	end
	local held = {}	-- globals the file creates, stored into G at the end
	local visible = setmetatable({
		accept = declarer(methods, "accept"),
		response = declarer(methods, "response"),
	}, { __index = held })

	local path = assert(skynet.getenv "snax", "please set snax in config file")
	local main, pattern = loader(path, name, G)

	setmetatable(G, {
		__index = visible,
		__newindex = function(_, key, value)
			local id = system_id[key]
			if id == nil then
				held[key] = value
			elseif type(value) ~= "function" then
				error(string.format("%s must be a function", key), 2)
			else
				methods[id][4] = value
			end
		end,
	})
	local ok, err = xpcall(main, debug.traceback)
	setmetatable(G, nil)
	assert(ok, err)

	for key, value in pairs(held) do
		G[key] = value
	end
	return methods, pattern
end
