-- skynet.inject: runs Lua source inside a running service, for the debug
-- command RUN (debug_console's `inject`).
--
--   inject(skynet, source, filename, args, f1, f2, ...) -> ok, output_lines
--
-- The code runs with `print` collecting its output lines, `_U` (the tables
-- among the upvalues of f1, f2, ... and of the functions they close over, by
-- upvalue name) and `_P` (for each protocol, the same for its dispatch
-- function: `_P.lua.CMD` is the table `CMD` the lua dispatcher uses). Its
-- other globals are the service's. `args` (a table.pack) are its `...`.
-- An error stops it: ok is false and the error is the last output line.

local debug = debug
local type, tostring, pcall, load = type, tostring, pcall, load

-- Adds the tables among f's upvalues (and, through the functions among them,
-- theirs) to `into`, by upvalue name; the first found of a name is kept.
local function upvalue_tables(into, f, seen)
	local i = 1
	while true do
		local name, value = debug.getupvalue(f, i)
		if name == nil then
			return
		end
		local kind = type(value)
		if kind == "table" then
			if into[name] == nil then
				into[name] = value
			end
		elseif kind == "function" and not seen[value] then
			seen[value] = true
			upvalue_tables(into, value, seen)
		end
		i = i + 1
	end
end

return function(skynet, source, filename, args, ...)
	local output = {}
	local function print(...)
		local line = table.pack(...)
		for i = 1, line.n do
			line[i] = tostring(line[i])
		end
		output[#output + 1] = table.concat(line, "\t", 1, line.n)
	end

	local seen = {}
	local U = {}
	for _, f in ipairs { ... } do
		upvalue_tables(U, f, seen)
	end
	local P = {}
	local protocols = U.proto or U.protocols or skynet._proto
	if protocols then
		for _, class in pairs(protocols) do
			local name, dispatch = class.name, class.dispatch
			if name and dispatch and not P[name] then
				local tables = {}
				upvalue_tables(tables, dispatch, {})
				P[name] = tables
			end
		end
	end

	local env = setmetatable({ print = print, _U = U, _P = P }, { __index = _ENV })
	local chunkname = filename and ("@" .. filename) or "=(load)"
	local f, err = load(source, chunkname, "bt", env)
	if not f then
		return false, { err }
	end
	args = args or { n = 0 }
	local ok, e = pcall(f, table.unpack(args, 1, args.n))
	if not ok then
		output[#output + 1] = tostring(e)
		return false, output
	end
	return true, output
end
