-- skynet.sharemap: one service writes an object of a sproto type, others
-- read it, without a message per change.
--
-- The object's encoded bytes live in an stm object (skynet.stm): every
-- commit() publishes a new immutable version, and a reader sees it after its
-- next update(). The sproto schema is the one in the process-wide sproto slot
-- 0 (register it once, in any service, before writers and readers start).
--
--   sharemap.register(file)        parse a .sproto file into slot 0
--   w = sharemap.writer(type [, obj])  w.field reads and writes obj;
--                                  w:commit() publishes obj as it is now;
--                                  w:copy() gives a reference for one reader
--                                  (send it in a message)
--   r = sharemap.reader(type, ref) r.field reads the version read last;
--                                  r:update() moves to the newest version
--                                  (true when there was a newer one)

local stm = require "skynet.stm"
local sprotoloader = require "sprotoloader"

local sharemap = {}

function sharemap.register(protofile)
	sprotoloader.register(protofile, 0)
end

local schema
local function shared_schema()
	if not schema then
		schema = sprotoloader.load(0)
	end
	return schema
end

local writer = {}

function writer:commit()
	self.__obj(schema:encode(self.__typename, self.__data))
end

function writer:copy()
	return stm.copy(self.__obj)
end

function sharemap.writer(typename, obj)
	local sp = shared_schema()
	obj = obj or {}
	local w = {
		__typename = typename,
		__obj = stm.new(sp:encode(typename, obj)),
		__data = obj,
		commit = writer.commit,
		copy = writer.copy,
	}
	return setmetatable(w, { __index = obj, __newindex = obj })
end

-- Decodes a version into the reader's table, replacing what it held.
local function decode_into(msg, sz, self)
	local data = self.__data
	for k in pairs(data) do
		data[k] = nil
	end
	schema:decode(self.__typename, msg, sz, data)
end

local reader = {}

function reader:update()
	return (self.__obj(decode_into, self))
end

local function read_only(_, key)
	error(string.format("sharemap reader is read-only (can't set %s)", tostring(key)), 2)
end

function sharemap.reader(typename, ref)
	local sp = shared_schema()
	local obj = stm.newcopy(ref)
	local data = {}
	local r = {
		__typename = typename,
		__obj = obj,
		__data = data,
		update = reader.update,
	}
	obj(function(msg, sz)
		sp:decode(typename, msg, sz, data)
	end)
	return setmetatable(r, { __index = data, __newindex = read_only })
end

return sharemap
