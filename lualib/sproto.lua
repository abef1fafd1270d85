-- sproto: schema objects, typed encode/decode, RPC hosts and the 0-pack,
-- over the native module sproto.core.
--
-- A sproto object wraps a native schema (`__cobj`). Objects made by `new`
-- or `parse` delete their native reference when collected; objects made by
-- `sharenew` (schemas from sprotoloader's global slots) do not. Types and
-- protocols are looked up once and cached in weak tables.

local core = require "sproto.core"

local assert, error, setmetatable, type = assert, error, setmetatable, type

local sproto = {}
local host = {}

local weak = { __mode = "kv" }
local own_mt = { __index = sproto }
local share_mt = { __index = sproto }
local host_mt = { __index = host }

function own_mt.__gc(self)
	core.deleteproto(self.__cobj)
end

local function wrap(cobj, mt)
	return setmetatable({
		__cobj = cobj,
		__tcache = setmetatable({}, weak),
		__pcache = setmetatable({}, weak),
	}, mt)
end

-- A sproto object from a compiled schema (sprotoparser.parse's output).
function sproto.new(bin)
	return wrap(assert(core.newproto(bin)), own_mt)
end

-- A sproto object around a native schema shared by the process
-- (sprotoloader.load); it is never deleted from here.
function sproto.sharenew(cobj)
	return wrap(cobj, share_mt)
end

-- A sproto object from schema text.
function sproto.parse(text)
	local parser = require "sprotoparser"
	return sproto.new(parser.parse(text))
end

local function querytype(self, name)
	local t = self.__tcache[name]
	if t == nil then
		t = assert(core.querytype(self.__cobj, name), "type not found")
		self.__tcache[name] = t
	end
	return t
end

-- The protocol `p` (a name or a tag): { name, tag, request, response }.
local function queryproto(self, p)
	local v = self.__pcache[p]
	if v == nil then
		local found, request, response = core.protocol(self.__cobj, p)
		assert(found, p .. " not found")
		local name, tag
		if type(p) == "number" then
			name, tag = found, p
		else
			name, tag = p, found
		end
		v = { name = name, tag = tag, request = request, response = response }
		self.__pcache[name] = v
		self.__pcache[tag] = v
	end
	return v
end
sproto.queryproto = queryproto

function sproto:exist_type(name)
	return self.__tcache[name] ~= nil or core.querytype(self.__cobj, name) ~= nil
end

function sproto:exist_proto(p)
	return self.__pcache[p] ~= nil or core.protocol(self.__cobj, p) ~= nil
end

function sproto:encode(name, tbl)
	return core.encode(querytype(self, name), tbl)
end

-- decode(name, string or pointer, size [, table]): the table and the bytes used.
function sproto:decode(name, ...)
	return core.decode(querytype(self, name), ...)
end

function sproto:pencode(name, tbl)
	return core.pack(core.encode(querytype(self, name), tbl))
end

function sproto:pdecode(name, ...)
	return core.decode(querytype(self, name), core.unpack(...))
end

function sproto:request_encode(p, tbl)
	local v = queryproto(self, p)
	if v.request then
		return core.encode(v.request, tbl), v.tag
	end
	return "", v.tag
end

function sproto:response_encode(p, tbl)
	local v = queryproto(self, p)
	if v.response then
		return core.encode(v.response, tbl)
	end
	return ""
end

function sproto:request_decode(p, ...)
	local v = queryproto(self, p)
	if v.request then
		return core.decode(v.request, ...), v.name
	end
	return nil, v.name
end

function sproto:response_decode(p, ...)
	local v = queryproto(self, p)
	if v.response then
		return core.decode(v.response, ...)
	end
end

sproto.pack = core.pack
sproto.unpack = core.unpack

-- default(typename): a table of the type's default values;
-- default(protoname, "REQUEST" or "RESPONSE"): the same for a protocol's part.
function sproto:default(name, which)
	if which == nil then
		return core.default(querytype(self, name))
	end
	local v = queryproto(self, name)
	local t
	if which == "REQUEST" then
		t = v.request
	elseif which == "RESPONSE" then
		t = v.response
	else
		error "Invalid type"
	end
	if t then
		return core.default(t)
	end
end

-- An RPC endpoint whose packets start with the header type `packagename`
-- (default "package": { type, session, ud }).
function sproto:host(packagename)
	return setmetatable({
		__proto = self,
		__package = assert(core.querytype(self.__cobj, packagename or "package"), "type package not found"),
		__session = {},
	}, host_mt)
end

-- Reused for every header; only encode/decode see it.
local header = {}

local function responder(self, response, session)
	return function(args, ud)
		header.type, header.session, header.ud = nil, session, ud
		local h = core.encode(self.__package, header)
		if response then
			return core.pack(h .. core.encode(response, args))
		end
		return core.pack(h)
	end
end

-- dispatch(packet) or dispatch(pointer, size):
--   "REQUEST", name, args, responder (nil without a session), ud
--   "RESPONSE", session, args, ud
function host:dispatch(...)
	local bin = core.unpack(...)
	header.type, header.session, header.ud = nil, nil, nil
	local h, used = core.decode(self.__package, bin, header)
	local body = bin:sub(used + 1)
	if h.type then
		local p = queryproto(self.__proto, h.type)
		local args
		if p.request then
			args = core.decode(p.request, body)
		end
		local session = h.session
		if session then
			return "REQUEST", p.name, args, responder(self, p.response, session), h.ud
		end
		return "REQUEST", p.name, args, nil, h.ud
	end
	local session = assert(h.session, "session not found")
	local response = assert(self.__session[session], "Unknown session")
	self.__session[session] = nil
	if response == true then
		return "RESPONSE", session, nil, h.ud
	end
	return "RESPONSE", session, (core.decode(response, body)), h.ud
end

-- attach(sp): a function(name, args, session, ud) that makes request
-- packets of sp's protocols; a session expects the response.
function host:attach(sp)
	return function(name, args, session, ud)
		local p = queryproto(sp, name)
		header.type, header.session, header.ud = p.tag, session, ud
		local h = core.encode(self.__package, header)
		if session then
			self.__session[session] = p.response or true
		end
		if p.request then
			return core.pack(h .. core.encode(p.request, args))
		end
		return core.pack(h)
	end
end

return sproto
