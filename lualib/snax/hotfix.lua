-- snax.hotfix: replaces methods of a running snax service with new code,
-- keeping the service's state.
--
--   local ok, ... = require "snax.hotfix" (methods, source, ...)
--
-- `methods` is the service's method list (see snax.interface); `source` is a
-- fragment in the snax file format. Every function the fragment defines
-- (accept.*, response.*, init, exit, hotfix, profile) replaces the existing
-- entry of the same group and name; one that matches nothing fails the patch
-- with "Patch mismatch <group>.<name>" (functions patched before it stay).
--
-- State survives because the new functions are given the old upvalues: an
-- upvalue of a new function that is nil (a `local x` declared without a
-- value) or that is the fragment's global table is joined, by name, to the
-- old upvalue of that name. So `local i` in the fragment IS the service's
-- `i`, and the fragment's globals are the service's. The old upvalues are
-- gathered from every current method, following the local functions they
-- call that share their environment; two different locals of one name are
-- ambiguous ("ambiguity local value <name>").
--
-- When the fragment defines `hotfix(...)`, it runs last with the extra
-- arguments. Returns what pcall would: true and hotfix's results, or false
-- and the error.

local interface = require "snax.interface"

local getupvalue, upvalueid, upvaluejoin = debug.getupvalue, debug.upvalueid, debug.upvaluejoin

local SYSTEM_HOTFIX = 3	-- method id of the system function hotfix

-- The identity of f's _ENV upvalue, or nil.
local function env_of(f)
	local i = 1
	while true do
		local name = getupvalue(f, i)
		if name == nil then
			return nil
		elseif name == "_ENV" then
			return upvalueid(f, i)
		end
		i = i + 1
	end
end

local function is_lua(f)
	return debug.getinfo(f, "S").what ~= "C"
end

-- Records where each upvalue of f lives, by name: { func, index, id }.
local function gather(f, env, found)
	local i = 1
	while true do
		local name, value = getupvalue(f, i)
		if name == nil then
			return
		end
		local id = upvalueid(f, i)
		local known = found[name]
		if known then
			assert(known.id == id, string.format("ambiguity local value %s", name))
		else
			found[name] = { func = f, index = i, id = id }
			if type(value) == "function" and is_lua(value) and env_of(value) == env then
				gather(value, env, found)
			end
		end
		i = i + 1
	end
end

-- A function whose only upvalue (index 1) is the service's global table.
local function service_globals()
	return _ENV
end

local function gather_all(methods)
	local found = {}
	for _, m in ipairs(methods) do
		local f = m[4]
		if f then
			gather(f, env_of(f), found)
		end
	end
	if found._ENV == nil then
		-- no current method reads a global: the fragment's globals are the
		-- service's own
		found._ENV = { func = service_globals, index = 1 }
	end
	return found
end

-- Joins the upvalues of f (and of the new local functions it uses) that
-- stand for old state to the old upvalues.
local function rebind(f, found, fragment_env, seen)
	if seen[f] then
		return
	end
	seen[f] = true
	local i = 1
	while true do
		local name, value = getupvalue(f, i)
		if name == nil then
			return
		end
		if value == nil or value == fragment_env then
			local old = found[name]
			if old then
				upvaluejoin(f, i, old.func, old.index)
			end
		elseif type(value) == "function" and is_lua(value) then
			rebind(value, found, fragment_env, seen)
		end
		i = i + 1
	end
end

local function find(methods, group, name)
	for _, m in ipairs(methods) do
		if m[2] == group and m[3] == name then
			return m
		end
	end
end

local function apply(methods, source, ...)
	-- The fragment runs with a copy of the service's globals, so its top
	-- level can use them; that copy is what its functions' _ENV is joined from.
	local fragment_env = {}
	for k, v in pairs(_ENV) do
		fragment_env[k] = v
	end
	local patch = interface("patch", fragment_env, function()
		local chunk, err = load(source, "=patch", "bt", fragment_env)
		if not chunk then
			error(err, 0)
		end
		return chunk, "patch"
	end)

	local found = gather_all(methods)
	local seen = {}
	for _, m in ipairs(patch) do
		local group, name, f = m[2], m[3], m[4]
		if f then
			local target = find(methods, group, name)
			if not target then
				error(string.format("Patch mismatch %s.%s", group, name), 0)
			end
			rebind(f, found, fragment_env, seen)
			target[4] = f
		end
	end

	local fix = patch[SYSTEM_HOTFIX][4]
	if fix then
		return fix(...)
	end
end

return function(methods, source, ...)
	return pcall(apply, methods, source, ...)
end
