-- sharedatad: makes, versions and frees the sharedata objects of the process
-- (see skynet.sharedata). One per node, started by skynet.sharedata.
--
-- lua commands:
--   new(name, value, ...)     -> nil, or false and the error
--   update(name, value, ...)  -> nil, or false and the error (a new name is made)
--   delete(name)              -> nil, or false and the error
--   query(name)               -> the object (counted for the reader, who
--                                confirms once it holds it), or nil
--   confirm(obj)              (no reply) undoes the count of query/monitor
--   monitor(name, obj)        answers once name has a version other than obj:
--                             that version (counted), or nil once deleted
--   collect()                 -> freed, held: frees now the retired versions
--                                that no reader holds
--
-- A replaced or deleted version is retired; it is freed once no reader holds
-- it (its count is 0) at a collection: every 10 minutes, or within 2 minutes
-- after an update (skynet's timing), or at `collect`.

local skynet = require "skynet"
local host = require("skynet.sharedata.corelib").host

local NORET = {}
local pool = {}		-- name -> { obj =, watch = { response... }, waits =, threshold = }
local known = {}	-- obj -> true: every object not yet freed
local retired = {}	-- obj -> true: replaced or deleted, freed when unheld
local ticks = 10	-- minutes (after the next one) to the next collection

local env_mt = { __index = _ENV }

-- The data a value of new/update stands for, or nil and the error.
local function evaluate(name, value, ...)
	local vt = type(value)
	if vt == "table" then
		return value
	elseif vt == "nil" then
		return {}
	elseif vt ~= "string" then
		return nil, "the value must be a table, Lua source or \"@file\", got " .. vt
	end
	local env = setmetatable({}, env_mt)
	local chunk, err
	if value:sub(1, 1) == "@" then
		local path = value:sub(2)
		local f, oerr = io.open(path, "rb")
		if not f then
			return nil, oerr
		end
		local text = f:read "a"
		f:close()
		chunk, err = load(text, "@" .. path, "t", env)
	else
		chunk, err = load(value, "=" .. name, "t", env)
	end
	if not chunk then
		return nil, err
	end
	local ok, ret = pcall(chunk, ...)
	if not ok then
		return nil, tostring(ret)
	end
	setmetatable(env, nil)
	if type(ret) == "table" then
		return ret
	end
	return env
end

-- A new counted object for name, or nil and the error.
local function make(cmd, name, value, ...)
	if type(name) ~= "string" then
		return nil, string.format("sharedata.%s: the name must be a string, got %s", cmd, type(name))
	end
	local data, err = evaluate(name, value, ...)
	local obj
	if data ~= nil then
		local ok, r = pcall(host.new, data)
		if ok then
			obj = r
		else
			err = tostring(r):gsub("^new: ", "")
		end
	end
	if obj == nil then
		return nil, string.format("sharedata.%s %s: %s", cmd, name, err)
	end
	host.incref(obj)	-- held by the pool
	known[obj] = true
	return obj
end

local function retire(v)
	retired[v.obj] = true
	host.decref(v.obj)
end

local function collect()
	collectgarbage()
	local freed, held = 0, 0
	for obj in pairs(retired) do
		if host.getref(obj) <= 0 then
			retired[obj] = nil
			known[obj] = nil
			host.delete(obj)
			freed = freed + 1
		else
			held = held + 1
		end
	end
	return freed, held
end

local function collector()
	while true do
		skynet.sleep(60 * 100)
		if ticks <= 0 then
			ticks = 10
			collect()
		else
			ticks = ticks - 1
		end
	end
end

-- Answers a watcher with a version it gets counted for; a watcher that is
-- gone gives the count back.
local function tell(response, obj)
	host.incref(obj)
	if not response(true, obj) then
		host.decref(obj)
	end
end

local CMD = {}

function CMD.new(name, value, ...)
	if type(name) == "string" and pool[name] then
		return false, string.format("sharedata.new %s: the name exists (use update)", name)
	end
	local obj, err = make("new", name, value, ...)
	if obj == nil then
		return false, err
	end
	pool[name] = { obj = obj, watch = {}, waits = 0, threshold = 16 }
end

function CMD.update(name, value, ...)
	local obj, err = make("update", name, value, ...)
	if obj == nil then
		return false, err
	end
	local v = pool[name]
	if v == nil then
		pool[name] = { obj = obj, watch = {}, waits = 0, threshold = 16 }
		return
	end
	local old = v.obj
	retire(v)
	v.obj = obj
	host.markdirty(old)
	local watch = v.watch
	v.watch, v.waits, v.threshold = {}, 0, 16
	for _, response in ipairs(watch) do
		tell(response, obj)
	end
	if ticks > 1 then
		ticks = 1	-- collect soon
	end
end

function CMD.delete(name)
	local v = pool[name]
	if v == nil then
		return false, string.format("sharedata.delete: no data named %q", tostring(name))
	end
	pool[name] = nil
	retire(v)
	for _, response in ipairs(v.watch) do
		response(true)
	end
end

function CMD.query(name)
	local v = pool[name]
	if v == nil then
		return nil
	end
	host.incref(v.obj)
	return v.obj
end

function CMD.confirm(obj)
	if known[obj] then
		host.decref(obj)
	end
	return NORET
end

-- Drops the watchers whose caller is gone; returns how many are left.
local function prune(watch)
	local live = {}
	for _, response in ipairs(watch) do
		if response "TEST" then
			live[#live + 1] = response
		end
	end
	return live
end

function CMD.monitor(name, obj)
	local v = pool[name]
	if v == nil then
		return nil
	end
	if obj ~= v.obj then
		host.incref(v.obj)
		return v.obj
	end
	v.waits = v.waits + 1
	if v.waits > v.threshold then
		v.watch = prune(v.watch)
		v.waits = #v.watch + 1
		v.threshold = v.waits * 2
	end
	v.watch[#v.watch + 1] = skynet.response()
	return NORET
end

function CMD.collect()
	return collect()
end

skynet.start(function()
	skynet.fork(collector)
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = CMD[cmd]
		if f == nil then
			error(string.format("sharedatad: unknown command %s", tostring(cmd)))
		end
		local function reply(r, ...)
			if r ~= NORET then
				skynet.retpack(r, ...)
			end
		end
		reply(f(...))
	end)
end)
