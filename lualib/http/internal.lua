-- http.internal: HTTP/1.x message parsing shared by http.httpd, http.httpc
-- and http.websocket. Every function reads through `readbytes(sz)`: sz
-- bytes, or whatever is available when sz is nil; it raises when the
-- connection fails (http.sockethelper's readers raise socket_error).
--
-- A header section may be at most LIMIT bytes; a chunk-size line at most
-- CHUNK_LINE_LIMIT. Parsers return nil (with a status code where one fits)
-- on malformed input instead of raising.
local internal = {}

local LIMIT = 8192
local CHUNK_LINE_LIMIT = 128

local concat, insert = table.concat, table.insert
local format, lower, byte = string.format, string.lower, string.byte
local pairs, ipairs, type, tonumber, error, setmetatable, pcall =
	pairs, ipairs, type, tonumber, error, setmetatable, pcall

internal.LIMIT = LIMIT

-- Readers that can take bytes back (see http.sockethelper): reader -> unread.
local unreaders = setmetatable({}, { __mode = "k" })

function internal.register_unread(read, unread)
	unreaders[read] = unread
end

-- Gives `s` back to `read` so that its next read returns it first; dropped
-- when `read` cannot take it back.
function internal.unread(read, s)
	if s and s ~= "" then
		local f = unreaders[read]
		if f then
			f(s)
			return true
		end
	end
	return false
end

-- recvheader(readbytes, lines, data) -> rest | nil: reads up to the empty line
-- that ends a header section, appending its lines (without CRLF) to `lines`.
-- `data` is what was read already. Returns the bytes after the section, or
-- nil when the section passes LIMIT bytes. An empty section (data starting
-- with CRLF, as a chunked body's empty trailer) adds no line.
function internal.recvheader(readbytes, lines, data)
	local e = data:find("\r\n\r\n", 1, true)
	while not e do
		if data:sub(1, 2) == "\r\n" then
			return data:sub(3)
		end
		if #data > LIMIT then
			return nil
		end
		local from = #data - 2
		data = data .. readbytes()
		e = data:find("\r\n\r\n", from > 0 and from or 1, true)
	end
	if data:sub(1, 2) == "\r\n" then
		return data:sub(3)
	end
	if e > LIMIT then
		return nil
	end
	local n = #lines
	for line in data:sub(1, e + 1):gmatch "(.-)\r\n" do
		n = n + 1
		lines[n] = line
	end
	return data:sub(e + 4)
end

-- `s` without its trailing spaces and tabs (a pattern such as "(.-)[ \t]*$"
-- would take quadratic time on a long run of spaces).
local function trim_end(s)
	local n = #s
	local last = n
	while last > 0 do
		local c = byte(s, last)
		if c ~= 32 and c ~= 9 then
			break
		end
		last = last - 1
	end
	if last < n then
		return s:sub(1, last)
	end
	return s
end

-- parseheader(lines, from, header) -> header | nil: adds the header fields of
-- lines[from..] to `header`, names in lower case; a field given twice gets a
-- list of its values; a line starting with a space or tab continues the
-- previous value. nil when a line is not a field.
function internal.parseheader(lines, from, header)
	local name
	for i = from, #lines do
		local line = lines[i]
		local b = line:byte(1)
		if b == 9 or b == 32 then
			if name == nil then
				return nil
			end
			local v = header[name]
			local more = trim_end(line:match "^[ \t]*(.*)$")
			if type(v) == "table" then
				v[#v] = v[#v] .. " " .. more
			else
				header[name] = v .. " " .. more
			end
		else
			local n, value = line:match "^([^:]+):[ \t]*(.*)$"
			if n == nil or n:find "[^!#$%%&'*+%-.^_`|~%w]" then
				return nil
			end
			value = trim_end(value)
			name = lower(n)
			local old = header[name]
			if old == nil then
				header[name] = value
			elseif type(old) == "table" then
				old[#old + 1] = value
			else
				header[name] = { old, value }
			end
		end
	end
	return header
end

-- The number in a Content-Length field: nil when absent, false when not a
-- valid length (several fields must all agree).
function internal.content_length(header)
	local v = header["content-length"]
	if v == nil then
		return nil
	end
	if type(v) == "table" then
		for i = 2, #v do
			if v[i] ~= v[1] then
				return false
			end
		end
		v = v[1]
	end
	if not v:match "^%d+$" or #v > 15 then
		return false
	end
	return tonumber(v)
end

-- The chunk size at the start of `data` (reading more as needed) and the
-- bytes after its line; nil when the line is not a chunk size.
local function chunksize(readbytes, data)
	while true do
		local f, e = data:find("\r\n", 1, true)
		if f then
			local hex, ext = data:sub(1, f - 1):match "^(%x+)[ \t]*(.*)$"
			if not hex or #hex > 12 or (ext ~= "" and ext:byte(1) ~= 59) then -- 59 ';'
				return nil
			end
			return tonumber(hex, 16), data:sub(e + 1)
		end
		if #data > CHUNK_LINE_LIMIT then
			return nil
		end
		data = data .. readbytes()
	end
end

-- The bytes after the CRLF that must start `data`; nil if something else is there.
local function readcrlf(readbytes, data)
	if #data < 2 then
		data = data .. readbytes(2 - #data)
	end
	if data:sub(1, 2) ~= "\r\n" then
		return nil
	end
	return data:sub(3)
end

-- recvchunkedbody(readbytes, bodylimit, header, data) -> body, header, rest
-- | nil, code: reads a chunked body (`data` is what was read already) and its
-- trailer fields into `header`. Fails with 413 past `bodylimit` bytes, 400
-- when malformed.
function internal.recvchunkedbody(readbytes, bodylimit, header, data)
	local parts, size = {}, 0
	while true do
		local sz
		sz, data = chunksize(readbytes, data)
		if not sz then
			return nil, 400
		end
		if sz == 0 then
			break
		end
		size = size + sz
		if bodylimit and size > bodylimit then
			return nil, 413
		end
		if #data >= sz then
			parts[#parts + 1] = data:sub(1, sz)
			data = data:sub(sz + 1)
		else
			parts[#parts + 1] = data
			parts[#parts + 1] = readbytes(sz - #data)
			data = ""
		end
		data = readcrlf(readbytes, data)
		if not data then
			return nil, 400
		end
	end
	local trailer = {}
	data = internal.recvheader(readbytes, trailer, data)
	if not data then
		return nil, 413
	end
	if not internal.parseheader(trailer, 1, header) then
		return nil, 400
	end
	return concat(parts), header, data
end

-- True when a header table (user-given, any case) has a field `name` (lower case).
local function has_field(header, name)
	for k in pairs(header) do
		if lower(k) == name then
			return true
		end
	end
	return false
end

local function field_lines(out, k, v)
	k = tostring(k)
	if type(v) == "table" then
		for _, one in ipairs(v) do
			field_lines(out, k, one)
		end
		return
	end
	v = tostring(v)
	if k:find "[\r\n:]" or v:find "[\r\n]" then
		error(format("Invalid header field %q", k))
	end
	out[#out + 1] = k .. ": " .. v .. "\r\n"
end

internal.field_lines = field_lines

-- request(interface, method, host, url, recvheader, header, content) -> code,
-- rest, header: sends a request and reads the response's status line and
-- header (into `recvheader` if given). `rest` is what was read after the
-- header. Raises on a failed connection or a malformed response.
function internal.request(interface, method, host, url, recvheader, header, content)
	local read, write = interface.read, interface.write
	local out = { format("%s %s HTTP/1.1\r\n", method, url) }
	if header then
		if not has_field(header, "host") then
			out[#out + 1] = format("host: %s\r\n", host)
		end
		for k, v in pairs(header) do
			field_lines(out, k, v)
		end
	else
		out[#out + 1] = format("host: %s\r\n", host)
	end
	local chunked = header and header["transfer-encoding"] == "chunked"
	if not (header and has_field(header, "content-length")) and not chunked then
		out[#out + 1] = format("content-length: %d\r\n", content and #content or 0)
	end
	out[#out + 1] = "\r\n"
	if content and #content <= 4096 then
		out[#out + 1] = content
		content = nil
	end
	write(concat(out))
	if content then
		write(content)
	end

	local lines = {}
	local rest = internal.recvheader(read, lines, "")
	if not rest then
		error "Recv header failed"
	end
	local code = tonumber((lines[1] or ""):match "^HTTP/%d%.%d%s+(%d%d%d)")
	if not code then
		error(format("Invalid HTTP response status line %q", lines[1] or ""))
	end
	local h = internal.parseheader(lines, 2, recvheader or {})
	if not h then
		error "Invalid HTTP response header"
	end
	return code, rest, h
end

-- The transfer coding of a message: "chunked", "identity" or nil (none
-- given); raises on anything else.
local function transfer_mode(header)
	local mode = header["transfer-encoding"]
	if mode == nil then
		return nil
	end
	if type(mode) == "string" then
		mode = lower(mode)
		if mode == "chunked" or mode == "identity" then
			return mode
		end
	end
	error "Unsupport transfer-encoding"
end

internal.transfer_mode = transfer_mode

-- response(interface, code, rest, header) -> body: reads the response body
-- after `request` (`rest` is what it read after the header).
function internal.response(interface, code, rest, header)
	if transfer_mode(header) == "chunked" then
		local body = internal.recvchunkedbody(interface.read, nil, header, rest)
		if not body then
			error "Invalid response body"
		end
		return body
	end
	local length = internal.content_length(header)
	if length == false then
		error "Invalid content-length"
	end
	if length then
		if #rest >= length then
			return rest:sub(1, length)
		end
		return rest .. interface.read(length - #rest)
	elseif code == 204 or code == 304 or code < 200 then
		return ""
	end
	-- no length: the body ends with the connection
	local all = interface.readall and interface.readall()
	return rest .. (all or "")
end

---------------------------------------------------------------- streams

-- A response body read piece by piece: `stream()` (or `stream:padding()`)
-- gives the next piece and the stream, nil at the end; a generic for over
-- the stream reads it all. `stream.connected` is true while reading, nil
-- once the body ended normally, false when the connection broke first.
local stream = {}
stream.__index = stream

function stream:close()
	local onclose = self._onclose
	if onclose then
		self._onclose = nil
		onclose(self)
	end
end

function stream:padding()
	return self._reading(self), self
end

stream.__close = stream.close
stream.__call = stream.padding

local function finish(s, ok)
	s._reading = stream.close
	if ok then
		s.connected = nil
	else
		s.connected = false
	end
	s:close()
end

-- The next bytes from the connection, or nil once it fails or closes.
local function read_more(s, sz)
	local ok, data = pcall(s._interface.read, sz)
	if ok and data then
		return data
	end
	return nil
end

local function stream_nobody(s)
	finish(s, true)
	return nil
end

local function stream_length(length)
	return function(s)
		if length <= 0 then
			finish(s, true)
			return nil
		end
		local data = s._body
		s._body = nil
		if data == nil or data == "" then
			data = read_more(s)
			if not data then
				finish(s, false)
				return nil
			end
		end
		if #data > length then
			data = data:sub(1, length)
		end
		length = length - #data
		return data
	end
end

local function stream_all(s)
	local data = s._body
	s._body = nil
	if data == nil or data == "" then
		data = read_more(s)
		if not data or data == "" then
			finish(s, true)
			return nil
		end
	end
	return data
end

local function stream_chunked(s)
	local read = s._interface.read
	local ok, sz, data = pcall(chunksize, read, s._body or "")
	if not ok or not sz then
		finish(s, false)
		return nil
	end
	if sz == 0 then
		local trailer = {}
		local ok2, rest = pcall(internal.recvheader, read, trailer, data)
		if not ok2 or not rest or not internal.parseheader(trailer, 1, s.header) then
			finish(s, false)
			return nil
		end
		finish(s, true)
		return nil
	end
	local piece
	if #data >= sz then
		piece, data = data:sub(1, sz), data:sub(sz + 1)
	else
		local more = read_more(s, sz - #data)
		if not more then
			finish(s, false)
			return nil
		end
		piece, data = data .. more, ""
	end
	local ok3, after = pcall(readcrlf, read, data)
	if not ok3 or not after then
		finish(s, false)
		return nil
	end
	s._body = after
	return piece
end

-- response_stream(interface, code, rest, header) -> stream (see above).
function internal.response_stream(interface, code, rest, header)
	local reading
	if transfer_mode(header) == "chunked" then
		reading = stream_chunked
	else
		local length = internal.content_length(header)
		if length == false then
			error "Invalid content-length"
		end
		if length then
			reading = stream_length(length)
		elseif code == 204 or code == 304 or code < 200 then
			reading = stream_nobody
		else
			reading = stream_all
		end
	end
	return setmetatable({
		status = code,
		header = header,
		connected = true,
		_body = rest,
		_interface = interface,
		_reading = reading,
	}, stream)
end

return internal
