-- skynet.db.redis: a Redis client (RESP2) on skynet.socketchannel.
--
--   local redis = require "skynet.db.redis"
--   local db = redis.connect { host = "127.0.0.1", port = 6379,
--       db = 0, auth = "pass", username = "user", overload = f }
--   db:set("k", "v"); db:get "k"; db:hmset(key, f1, v1, ...); db:hmset { key, f1, v1 }
--   db:pipeline({ {"set", "a", 1}, {"incr", "a"} } [, resp])
--   db:disconnect()
--   local w = redis.watch { host = ..., port = ... }
--   w:subscribe "ch"; w:psubscribe "p.*"; w:message() -> msg, channel [, pattern]
--
-- Any method name not defined here is a command: it is sent upper-cased with
-- its arguments (one table argument is the argument list). A server error
-- (`-ERR ...`) is raised to the caller with the server's text; an array that
-- holds an error is raised as the array itself, as skynet does. A reply that
-- is not valid RESP raises an error naming the problem and drops the
-- connection (the byte stream can no longer be trusted); a connection lost
-- with requests in flight fails those requests at once (socketchannel).

local socketchannel = require "skynet.socketchannel"

local byte, sub, upper, format = string.byte, string.sub, string.upper, string.format
local concat = table.concat
local tostring, tonumber, math_type = tostring, tonumber, math.type
local error, type, select, pairs, ipairs, setmetatable =
	error, type, select, pairs, ipairs, setmetatable

local redis = {}

---------------------------------------------------------------- replies

-- Redis refuses bulk strings above 512 MB (proto-max-bulk-len); a larger
-- length is a broken stream, not data to wait for.
local MAX_BULK = 512 * 1024 * 1024
-- Real replies nest a few levels (COMMAND, XREAD); a deeper one is garbage.
local MAX_DEPTH = 128

local function malformed(what, line)
	error(format("redis: malformed reply: %s (%q)", what, sub(line, 1, 64)), 0)
end

-- A RESP length or integer: optional '-' then decimal digits only.
local function integer_of(text, line)
	if not text:match "^%-?%d+$" then
		malformed("bad number", line)
	end
	local n = tonumber(text)
	if math_type(n) ~= "integer" then
		malformed("number out of range", line)
	end
	return n
end

-- A bulk or array length: nil for -1 (RESP2's null), other negatives refused.
local function length_of(text, line, what)
	local n = integer_of(text, line)
	if n >= 0 then
		return n
	elseif n ~= -1 then
		malformed("negative " .. what .. " length", line)
	end
	return nil
end

local read_reply

local function read_array(sock, n, line, depth)
	if depth >= MAX_DEPTH then
		malformed("arrays nested deeper than " .. MAX_DEPTH, line)
	end
	local items = {}
	local ok = true
	for i = 1, n do
		local iok, v = read_reply(sock, depth + 1)
		if not iok then
			ok = false
		end
		items[i] = v
	end
	return ok, items
end

-- Reads one reply: returns ok (false for an error reply, or an array holding
-- one) and the value. Raises on anything that is not RESP2.
function read_reply(sock, depth)
	local line = sock:readline "\r\n"
	local kind = byte(line)
	local rest = sub(line, 2)
	if kind == 43 then	-- '+' simple string
		return true, rest
	elseif kind == 45 then	-- '-' error
		return false, rest
	elseif kind == 58 then	-- ':' integer
		return true, integer_of(rest, line)
	elseif kind == 36 then	-- '$' bulk string
		local len = length_of(rest, line, "bulk")
		if len == nil then
			return true, nil
		elseif len > MAX_BULK then
			malformed("bulk length over 512 MB", line)
		end
		local data = sock:read(len + 2)
		if sub(data, -2) ~= "\r\n" then
			malformed("bulk string not ended by CRLF", data)
		end
		return true, sub(data, 1, -3)
	elseif kind == 42 then	-- '*' array
		local n = length_of(rest, line, "array")
		if n == nil then
			return true, nil
		end
		return read_array(sock, n, line, depth or 0)
	elseif kind == nil then
		malformed("empty line", line)
	else
		malformed("unknown reply type " .. format("%q", sub(line, 1, 1)), line)
	end
end

local function read_response(sock)
	return read_reply(sock, 0)
end

local function read_boolean(sock)
	local ok, v = read_reply(sock, 0)
	if ok then
		return true, v ~= 0
	end
	return false, v
end

---------------------------------------------------------------- requests

-- Appends argument i (0 is the command) as a RESP bulk string to `out`.
local function append_bulk(out, v, i, cmd)
	if v == nil then
		error(format("redis: argument %d of %s is nil", i, tostring(cmd)), 0)
	end
	v = tostring(v)
	local k = #out
	out[k + 1] = "$" .. #v .. "\r\n"
	out[k + 2] = v
	out[k + 3] = "\r\n"
end

-- Appends one RESP array (the list `parts`: a command and its arguments).
local function append_command(out, parts, n)
	out[#out + 1] = "*" .. n .. "\r\n"
	local cmd = parts[1]
	for i = 1, n do
		append_bulk(out, parts[i], i - 1, cmd)
	end
	return out
end

-- The request for CMD with the arguments of list `args` (args.n if set).
local function compose(cmd, args)
	local n = 0
	if args ~= nil then
		n = args.n or #args
	end
	local out = { "*" .. (n + 1) .. "\r\n" }
	append_bulk(out, cmd, 0, cmd)
	for i = 1, n do
		append_bulk(out, args[i], i, cmd)
	end
	return concat(out)
end

-- Method arguments (a Lua 5.5 vararg table): none, one table (the list), or
-- the values themselves. `...args` keeps the arguments off the Lua stack:
-- passing `...` on would copy them there a second time, and
-- hmset(key, table.unpack(500000 values)) must fit in LUAI_MAXSTACK.
local function arglist(args)
	local n = args.n
	if n == 0 then
		return nil
	elseif n == 1 and type(args[1]) == "table" then
		return args[1]
	end
	return args
end

local function login(conf)
	local auth, db = conf.auth, conf.db
	if auth == nil and db == nil then
		return nil
	end
	local auth_args
	if auth ~= nil then
		auth_args = conf.username and { conf.username, auth } or { auth }
	end
	return function(channel)
		if auth_args then
			channel:request(compose("AUTH", auth_args), read_response)
		end
		if db ~= nil then
			channel:request(compose("SELECT", { db }), read_response)
		end
	end
end

---------------------------------------------------------------- db object

local command = {}
local meta = { __index = command }	-- no __gc: disconnect is explicit

function redis.connect(conf)
	local channel = socketchannel.channel {
		host = conf.host,
		port = conf.port or 6379,
		auth = login(conf),
		nodelay = true,
		overload = conf.overload,
	}
	channel:connect(true)	-- one try: a server that is down raises here
	return setmetatable({ channel }, meta)
end

function command:disconnect()
	self[1]:close()
	setmetatable(self, nil)
end

function command:exists(...args)
	return self[1]:request(compose("EXISTS", arglist(args)), read_boolean)
end

function command:sismember(key, value)
	return self[1]:request(compose("SISMEMBER", { key, value }), read_boolean)
end

-- Sends every op ({cmd, args...}) in one write and reads all the replies.
-- With `resp`, appends {ok=, out=} per op to it and returns it; without,
-- returns (or raises) the last reply.
function command:pipeline(ops, resp)
	if type(ops) ~= "table" or #ops == 0 then
		error("redis: pipeline needs a non-empty list of commands", 2)
	end
	local out = {}
	for i, op in ipairs(ops) do
		if type(op) ~= "table" or op[1] == nil then
			error(format("redis: pipeline op %d is not {cmd, args...}", i), 2)
		end
		append_command(out, op, #op)
	end
	local count = #ops
	local reader
	if resp then
		reader = function(sock)
			for _ = 1, count do
				local ok, v = read_reply(sock, 0)
				resp[#resp + 1] = { ok = ok, out = v }
			end
			return true, resp
		end
	else
		reader = function(sock)
			local ok, v
			for _ = 1, count do
				ok, v = read_reply(sock, 0)
			end
			return ok, v
		end
	end
	return self[1]:request(concat(out), reader)
end

setmetatable(command, {
	__index = function(t, name)
		local cmd = upper(name)
		local f = function(self, ...args)
			return self[1]:request(compose(cmd, arglist(args)), read_response)
		end
		t[name] = f
		return f
	end,
})

---------------------------------------------------------------- watch object

local watch = {}
local watchmeta = {
	__index = watch,
	__gc = function(self)
		self.__sock:close()
	end,
}

-- After each (re)connect: log in, then subscribe again to what was active.
local function watch_login(conf, obj)
	local base = login(conf)
	return function(channel)
		if base then
			base(channel)
		end
		for pattern in pairs(obj.__psubscribe) do
			channel:request(compose("PSUBSCRIBE", { pattern }))
		end
		for name in pairs(obj.__subscribe) do
			channel:request(compose("SUBSCRIBE", { name }))
		end
	end
end

function redis.watch(conf)
	local obj = { __subscribe = {}, __psubscribe = {} }
	local channel = socketchannel.channel {
		host = conf.host,
		port = conf.port or 6379,
		auth = watch_login(conf, obj),
		nodelay = true,
	}
	obj.__sock = channel
	channel:connect(true)
	return setmetatable(obj, watchmeta)
end

function watch:disconnect()
	self.__sock:close()
	setmetatable(self, nil)
end

-- The server confirms these as pushes, which message() reads.
for _, name in ipairs { "subscribe", "psubscribe", "unsubscribe", "punsubscribe" } do
	local cmd = upper(name)
	watch[name] = function(self, ...)
		local channel = self.__sock
		for i = 1, select("#", ...) do
			channel:request(compose(cmd, { (select(i, ...)) }))
		end
	end
end

-- Waits for the next published message: returns message, channel for a
-- subscription and message, channel, pattern for a pattern subscription.
-- Confirmations met on the way update the set renewed after a reconnect.
function watch:message()
	local channel = self.__sock
	while true do
		local push = channel:response(read_response)
		if type(push) ~= "table" then
			error(format("redis: unexpected push %s", tostring(push)), 2)
		end
		local kind, a, b, c = push[1], push[2], push[3], push[4]
		if kind == "message" then
			return b, a
		elseif kind == "pmessage" then
			return c, b, a
		elseif kind == "subscribe" then
			self.__subscribe[a] = true
		elseif kind == "psubscribe" then
			self.__psubscribe[a] = true
		elseif kind == "unsubscribe" then
			self.__subscribe[a] = nil
		elseif kind == "punsubscribe" then
			self.__psubscribe[a] = nil
		end
	end
end

return redis
