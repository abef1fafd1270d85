-- skynet.injectcode: runs Lua source as if it were written inside a function
-- that is running now (a debugger's "evaluate here").
--
--   injectcode(source [, co [, level [, ext]]]) -> true, results... | false, err
--
-- The function is the one at `level` of coroutine `co` (default: the running
-- coroutine, level 0 = the caller of injectcode; for another coroutine, level
-- counts as in debug.getinfo(co, level)). The source sees that function's
-- locals, upvalues and varargs by name; assignments to upvalues change them
-- in place, and the locals' final values are written back into the frame.
-- `ext` (name -> value) adds names, shadowed by locals and upvalues.

local debug = debug
local pairs, ipairs, load, pcall = pairs, ipairs, load, pcall

local TEMPLATE = [[
local %s
return function(...)
%s
end, function()
return {%s}
end
]]

-- What the frame at `lvl` of `co` sees (lvl as debug.getlocal(co, lvl) takes
-- it from the caller of this function).
local function frame(co, lvl)
	local info = debug.getinfo(co, lvl, "f")
	if info == nil or info.func == nil then
		return nil
	end
	local f = info.func
	local locals, local_slot = {}, {}
	local i = 1
	while true do
		local name, value = debug.getlocal(co, lvl, i)
		if name == nil then
			break
		end
		if name:match("^[%a_][%w_]*$") then	-- not "(temporary)" and the like
			locals[name] = value
			local_slot[name] = i	-- the last of a name is the visible one
		end
		i = i + 1
	end
	local varargs = { n = 0 }
	i = 1
	while true do
		local name, value = debug.getlocal(co, lvl, -i)
		if name == nil then
			break
		end
		varargs[i] = value
		varargs.n = i
		i = i + 1
	end
	return f, locals, local_slot, varargs
end

-- Builds the runner: a function of `source` whose free names are bound to
-- the frame's locals (copied), its upvalues (shared) and `ext`; and a
-- function giving { slot = value } of the locals after the run.
local function build(source, f, locals, local_slot, ext)
	local names, seen = {}, {}
	local function declare(name)
		if not seen[name] then
			seen[name] = true
			names[#names + 1] = name
		end
	end
	for name in pairs(ext or {}) do
		declare(name)
	end
	local upvalue_index = {}
	local i = 1
	while true do
		local name = debug.getupvalue(f, i)
		if name == nil then
			break
		end
		if name:match("^[%a_][%w_]*$") then
			upvalue_index[name] = i
			declare(name)
		end
		i = i + 1
	end
	local back = {}
	for name, slot in pairs(local_slot) do
		declare(name)
		back[#back + 1] = string.format("[%d]=%s,", slot, name)
	end
	local decl = #names > 0 and table.concat(names, ",") or "_"
	local chunk = string.format(TEMPLATE, decl, source, table.concat(back))
	local loader, err = load(chunk, "=(injectcode)", "t")
	if not loader then
		return nil, err
	end
	local run, after = loader()
	i = 1
	while true do
		local name = debug.getupvalue(run, i)
		if name == nil then
			break
		end
		if local_slot[name] then
			debug.setupvalue(run, i, locals[name])
		elseif upvalue_index[name] then
			debug.upvaluejoin(run, i, f, upvalue_index[name])
		elseif ext and ext[name] ~= nil then
			debug.setupvalue(run, i, ext[name])
		end
		i = i + 1
	end
	return run, after
end

return function(source, co, level, ext)
	local current = co == nil or co == coroutine.running()
	co = co or coroutine.running()
	level = level or 0
	-- from inside frame(): 1 is frame itself, 2 this function, 3 our caller
	local lvl = current and level + 3 or level
	local f, locals, local_slot, varargs = frame(co, lvl)
	if f == nil then
		return false, "Invalid level"
	end
	local run, after = build(source, f, locals, local_slot, ext)
	if run == nil then
		return false, after
	end
	local rets = table.pack(pcall(run, table.unpack(varargs, 1, varargs.n)))
	if not rets[1] then
		return false, rets[2]
	end
	-- here 1 is this function, 2 our caller
	local set_lvl = current and level + 2 or level
	for slot, value in pairs(after()) do
		debug.setlocal(co, set_lvl, slot, value)
	end
	return table.unpack(rets, 1, rets.n)
end
