-- http.websocket: WebSocket (RFC 6455) servers and clients over skynet.socket.
--
-- Server: websocket.accept(id, handle [, protocol [, addr [, options]]])
-- runs the connection until it ends, calling handle.connect(id),
-- handshake(id, header, url), message(id, data, "text"|"binary"),
-- ping(id, data), pong(id, data), close(id, code, reason), error(id, err),
-- warning(ws, size) when present. options.upgrade = { header, method, url }
-- takes over a request that http.httpd already read.
-- Client: websocket.connect(url [, header [, timeout]]) -> id;
-- websocket.read(id) -> data, "text"|"binary" | false, reason, code.
-- Both: write(id, data [, "text"|"binary" [, masking_key]]), ping(id),
-- close(id [, code [, reason]]), addrinfo(id), real_ip(id), is_close(id).
--
-- Masking follows the RFC: a client masks every frame (a random key unless
-- one is given), a server never does; a server closes on an unmasked frame
-- and a client on a masked one (close code 1002). Fragmented messages are
-- joined. A server takes frames and messages up to MAX_FRAME_SIZE (1009
-- past it). Protocol errors send a close frame with their code.
local skynet = require "skynet"
local socket = require "skynet.socket"
local internal = require "http.internal"
local httpd = require "http.httpd"
local sockethelper = require "http.sockethelper"
local core = require "http.websocket.core"

local socket_error = sockethelper.socket_error
local pack, unpack, format = string.pack, string.unpack, string.format
local concat = table.concat
local assert, error, pcall, xpcall, type, tostring, setmetatable =
	assert, error, pcall, xpcall, type, tostring, setmetatable

local MAX_FRAME_SIZE = 256 * 1024

local M = {}

M.MAX_FRAME_SIZE = MAX_FRAME_SIZE

local OP = { frame = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA }
local OPNAME = { [0x0] = "frame", [0x1] = "text", [0x2] = "binary", [0x8] = "close", [0x9] = "ping", [0xA] = "pong" }

-- A violation of the protocol by the peer: its close code and reason.
local protocol_error = {}
protocol_error.__index = protocol_error
protocol_error.__tostring = function(e)
	return format("websocket protocol error %d: %s", e.code, e.reason)
end

local function violation(code, reason)
	error(setmetatable({ code = code, reason = reason }, protocol_error), 0)
end

local ws_pool = {}	-- socket id -> websocket object

local function close_websocket(ws)
	assert(ws_pool[ws.id] == ws)
	ws_pool[ws.id] = nil
	ws.close()
end

local function is_closed(id)
	return not ws_pool[id]
end

local function try_handle(ws, name, ...)
	local f = ws.handle and ws.handle[name]
	if f then
		f(ws.id, ...)
	end
end

---------------------------------------------------------------- frames

local function mask_key_of(k)
	if type(k) == "number" then
		return pack(">I4", k)
	end
	assert(type(k) == "string" and #k == 4, "masking key must be an integer or 4 bytes")
	return k
end

-- One frame, fin set. A client masks (with `masking_key` or a random key);
-- a server never does.
local function write_frame(ws, op, payload, masking_key)
	payload = payload or ""
	local len = #payload
	local b1 = 0x80 | OP[op]
	local masked = ws.mode == "client"
	local b2 = masked and 0x80 or 0
	local head
	if len < 126 then
		head = pack("BB", b1, b2 | len)
	elseif len <= 0xffff then
		head = pack(">BBI2", b1, b2 | 126, len)
	else
		head = pack(">BBI8", b1, b2 | 127, len)
	end
	if masked then
		local key = masking_key and mask_key_of(masking_key) or core.maskkey()
		head = head .. key
		payload = core.mask(payload, key)
	end
	if len <= 4096 then
		ws.write(head .. payload)
	else
		ws.write(head)
		ws.write(payload)
	end
end

-- The next frame: fin, opcode name, payload (unmasked).
local function read_frame(ws)
	local b1, b2 = unpack("BB", ws.read(2))
	local fin = b1 & 0x80 ~= 0
	if b1 & 0x70 ~= 0 then
		violation(1002, "reserved bits set")
	end
	local op = OPNAME[b1 & 0x0f]
	if not op then
		violation(1002, format("unknown opcode %d", b1 & 0x0f))
	end
	local masked = b2 & 0x80 ~= 0
	if ws.mode == "server" and not masked then
		violation(1002, "unmasked client frame")
	elseif ws.mode == "client" and masked then
		violation(1002, "masked server frame")
	end
	local len = b2 & 0x7f
	if len == 126 then
		len = unpack(">I2", ws.read(2))
	elseif len == 127 then
		len = unpack(">i8", ws.read(8))
		if len < 0 then
			violation(1002, "bad payload length")
		end
	end
	if OP[op] >= 8 and (len > 125 or not fin) then
		violation(1002, "bad control frame")
	end
	if ws.mode == "server" and len > MAX_FRAME_SIZE then
		violation(1009, "payload_len is too large")
	end
	local key = masked and ws.read(4)
	local payload = len > 0 and ws.read(len) or ""
	if key then
		payload = core.mask(payload, key)
	end
	return fin, op, payload
end

-- code, reason of a close frame's payload (code nil when there is none).
local function read_close(payload)
	local n = #payload
	if n == 0 then
		return nil, ""
	elseif n == 1 then
		violation(1002, "bad close payload")
	end
	local code = unpack(">I2", payload)
	if code < 1000 or code >= 5000 or (code >= 1004 and code <= 1006) or (code >= 1015 and code < 3000) then
		violation(1002, format("bad close code %d", code))
	end
	return code, payload:sub(3)
end

local function close_payload(code, reason)
	if not code then
		return ""
	end
	reason = reason or ""
	if #reason > 123 then
		reason = reason:sub(1, 123)
	end
	return pack(">I2", code) .. reason
end

-- Feeds a data frame into the message being assembled in `ws`; the whole
-- message and its type once its last frame came.
local function assemble(ws, fin, op, payload)
	local parts = ws.parts
	if op == "frame" then
		if not parts then
			violation(1002, "continuation frame without a message")
		end
	elseif parts then
		violation(1002, "new message inside a fragmented one")
	end
	if fin and not parts then
		return payload, op
	end
	if not parts then
		parts = { n = 0, size = 0, op = op }
		ws.parts = parts
	end
	parts.size = parts.size + #payload
	if ws.mode == "server" and parts.size > MAX_FRAME_SIZE then
		violation(1009, "payload_len is too large")
	end
	parts.n = parts.n + 1
	parts[parts.n] = payload
	if fin then
		ws.parts = nil
		return concat(parts, "", 1, parts.n), parts.op
	end
end

-- Answers a protocol error with a close frame (best effort).
local function refuse(ws, e)
	pcall(write_frame, ws, "close", close_payload(e.code, e.reason))
end

---------------------------------------------------------------- server

local function valid_key(key)
	return type(key) == "string" and #key == 24 and key:match "^[%w+/]+==$" ~= nil
end

local function has_token(v, token)
	if type(v) ~= "string" then
		return false
	end
	for t in v:gmatch "[^%s,]+" do
		if t:lower() == token then
			return true
		end
	end
	return false
end

-- Reads and answers the opening handshake: nil, header, url on success, or
-- an HTTP status (and a text) to refuse with.
local function read_handshake(ws, upgrade)
	local header, method, url
	if upgrade then
		header, method, url = upgrade.header, upgrade.method, upgrade.url
	else
		local lines = {}
		local rest = internal.recvheader(ws.read, lines, "")
		if not rest then
			return 413
		end
		internal.unread(ws.read, rest)
		local version
		method, url, version = (lines[1] or ""):match "^(%a+) +([^ ]+) +HTTP/(%d%.%d)$"
		if not method then
			return 400, "Bad request line"
		end
		if tonumber(version) < 1.1 then
			return 505
		end
		header = internal.parseheader(lines, 2, {})
	end
	if method ~= "GET" then
		return 400, "need GET method"
	end
	if not header then
		return 400
	end
	if type(header.upgrade) ~= "string" or header.upgrade:lower() ~= "websocket" then
		return 426, "Upgrade Required"
	end
	if not header.host then
		return 400, "host Required"
	end
	if not has_token(header.connection, "upgrade") then
		return 400, "Connection must Upgrade"
	end
	local key = header["sec-websocket-key"]
	if not key then
		return 400, "Sec-WebSocket-Key Required"
	elseif not valid_key(key) then
		return 400, "Sec-WebSocket-Key invalid"
	end
	if header["sec-websocket-version"] ~= "13" then
		return 400, "Sec-WebSocket-Version must 13"
	end
	local subprotocol = ""
	if has_token(header["sec-websocket-protocol"], "chat") then
		subprotocol = "Sec-WebSocket-Protocol: chat\r\n"
	end
	ws.real_ip = header["x-real-ip"]	-- set by a proxy such as nginx
	ws.write("HTTP/1.1 101 Switching Protocols\r\n"
		.. "Upgrade: websocket\r\n"
		.. "Connection: Upgrade\r\n"
		.. format("Sec-WebSocket-Accept: %s\r\n", core.accept(key))
		.. subprotocol
		.. "\r\n")
	return nil, header, url
end

local function serve(ws, options)
	try_handle(ws, "connect")
	local code, err, url = read_handshake(ws, options and options.upgrade)
	if code then
		local ok, e = httpd.write_response(ws.write, code, err)
		if not ok then
			error(e)
		end
		try_handle(ws, "close")
		return
	end
	try_handle(ws, "handshake", err, url)
	while true do
		if is_closed(ws.id) then
			try_handle(ws, "close")
			return
		end
		local fin, op, payload = read_frame(ws)
		if op == "close" then
			local cc, reason = read_close(payload)
			if not is_closed(ws.id) then
				write_frame(ws, "close", close_payload(cc, ""))
			end
			try_handle(ws, "close", cc, reason)
			return
		elseif op == "ping" then
			write_frame(ws, "pong", payload)
			try_handle(ws, "ping", payload)
		elseif op == "pong" then
			try_handle(ws, "pong", payload)
		else
			local msg, kind = assemble(ws, fin, op, payload)
			if msg then
				try_handle(ws, "message", msg, kind)
			end
		end
	end
end

local function new_ws(id, mode, protocol)
	if protocol ~= "ws" then
		error(format("invalid websocket protocol:%s (wss is not supported here)", tostring(protocol)))
	end
	local ws = {
		id = assert(id),
		mode = mode,
		read = sockethelper.readfunc(id),
		write = sockethelper.writefunc(id),
		close = function()
			socket.close(id)
		end,
	}
	ws_pool[id] = ws
	return ws
end

function M.accept(id, handle, protocol, addr, options)
	if not (options and options.upgrade) then
		local ok, err = socket.start(id)
		if not ok then
			return false, err
		end
	end
	local ws = new_ws(id, "server", protocol or "ws")
	ws.handle = handle
	ws.addr = addr
	local on_warning = handle and handle.warning
	if on_warning then
		local ok = pcall(socket.warning, id, function(_, size)
			on_warning(ws, size)
		end)
		if not ok then
			if not is_closed(id) then
				close_websocket(ws)
			end
			return false, "connect is closed " .. id
		end
	end
	local ok, err = xpcall(serve, function(e)
		if e == socket_error or getmetatable(e) == protocol_error then
			return e
		end
		return debug.traceback(tostring(e), 2)
	end, ws, options)
	if getmetatable(err) == protocol_error and not is_closed(id) then
		refuse(ws, err)
	end
	local closed = is_closed(id)
	if not closed then
		close_websocket(ws)
	end
	if ok then
		return true
	end
	if err == socket_error then
		if closed then
			try_handle(ws, "close")
		else
			try_handle(ws, "error", err)
		end
		return true
	end
	if getmetatable(err) == protocol_error then
		try_handle(ws, "close", err.code, err.reason)
		return false, tostring(err)
	end
	return false, err
end

---------------------------------------------------------------- client

local function write_handshake(ws, host, uri, header)
	local key = core.newkey()
	local request = {
		["Upgrade"] = "websocket",
		["Connection"] = "Upgrade",
		["Sec-WebSocket-Version"] = "13",
		["Sec-WebSocket-Key"] = key,
	}
	if header then
		for k, v in pairs(header) do
			assert(request[k] == nil, k)
			request[k] = v
		end
	end
	local recv = {}
	local code, rest = internal.request(ws, "GET", host, uri, recv, request)
	if code ~= 101 then
		error(format("websocket handshake error: code[%s] info:%s", code, rest))
	end
	internal.unread(ws.read, rest)
	if type(recv.upgrade) ~= "string" or recv.upgrade:lower() ~= "websocket" then
		error "websocket handshake upgrade must websocket"
	end
	if not has_token(recv.connection, "upgrade") then
		error "websocket handshake connection must upgrade"
	end
	local accept = recv["sec-websocket-accept"]
	if not accept then
		error "websocket handshake need Sec-WebSocket-Accept"
	end
	if accept ~= core.accept(key) then
		error "websocket handshake invalid Sec-WebSocket-Accept"
	end
end

function M.connect(url, header, timeout)
	local protocol, host, uri = url:match "^(wss?)://([^/]+)(.*)$"
	if protocol ~= "ws" and protocol ~= "wss" then
		error(format("invalid protocol: %s", tostring(protocol)))
	end
	local addr, port = host:match "^%[(.-)%]:?(%d*)$"
	if not addr then
		addr, port = host:match "^([^:]+):?(%d*)$"
	end
	if not addr then
		error(format("invalid websocket host: %s", host))
	end
	if port == "" then
		port = protocol == "ws" and 80 or 443
	end
	if protocol == "wss" then
		error "invalid websocket protocol:wss (wss is not supported here)"
	end
	uri = uri == "" and "/" or uri
	local id = sockethelper.connect(addr, tonumber(port), timeout)
	local ws = new_ws(id, "client", protocol)
	ws.addr = host
	local ok, err = pcall(write_handshake, ws, host, uri, header)
	if not ok then
		close_websocket(ws)
		error(err)
	end
	return id
end

local function get(id)
	local ws = ws_pool[id]
	if not ws then
		error(format("websocket %s is closed", tostring(id)))
	end
	return ws
end

-- The next message; false, reason, code once closed (a close frame from
-- the peer is answered), on a protocol error, or when the connection breaks.
local function read_message(ws)
	while true do
		local fin, op, payload = read_frame(ws)
		if op == "close" then
			local code, reason = read_close(payload)
			pcall(write_frame, ws, "close", close_payload(code, ""))
			return false, reason, code
		elseif op == "ping" then
			write_frame(ws, "pong", payload)
		elseif op ~= "pong" then
			local msg, kind = assemble(ws, fin, op, payload)
			if msg then
				return msg, kind
			end
		end
	end
end

function M.read(id)
	local ws = get(id)
	local ok, msg, kind, code = pcall(read_message, ws)
	if ok and msg then
		return msg, kind
	end
	if not ok and getmetatable(msg) == protocol_error then
		if not is_closed(id) then
			refuse(ws, msg)
		end
		kind, code = msg.reason, msg.code
	elseif not ok then
		if msg ~= socket_error then
			if not is_closed(id) then
				close_websocket(ws)
			end
			error(msg)
		end
		kind = tostring(msg)
	end
	if not is_closed(id) then
		close_websocket(ws)
	end
	return false, kind, code
end

function M.write(id, data, fmt, masking_key)
	local ws = get(id)
	fmt = fmt or "text"
	assert(fmt == "text" or fmt == "binary", "websocket.write format must be text or binary")
	write_frame(ws, fmt, data, masking_key)
end

function M.ping(id, data)
	write_frame(get(id), "ping", data)
end

function M.addrinfo(id)
	return get(id).addr
end

function M.real_ip(id)
	return get(id).real_ip
end

-- Sends a close frame (with `code` and `reason` if given) and closes.
function M.close(id, code, reason)
	local ws = ws_pool[id]
	if not ws then
		return
	end
	local ok, err = pcall(write_frame, ws, "close", close_payload(code, reason))
	close_websocket(ws)
	if not ok and err ~= socket_error then
		skynet.error(tostring(err))
	end
end

M.is_close = is_closed

return M
