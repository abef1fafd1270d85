-- http.httpd: read one HTTP/1.x request and write a response, through the
-- read/write functions of http.sockethelper (or any with their contract).
--
-- read_request(read [, bodylimit]) -> 200, url, method, header, body; or an
-- error status alone (400 malformed, 413 header or body too large, 501
-- unknown transfer coding, 505 HTTP version) for the caller to answer; or
-- nil, err when reading failed (err == sockethelper.socket_error when the
-- connection closed). With a reader from sockethelper.readfunc, bytes read
-- past the request are kept for the next read_request (keep-alive,
-- pipelining).
local internal = require "http.internal"

local concat = table.concat
local format = string.format
local type, pcall, tonumber, tostring, pairs = type, pcall, tonumber, tostring, pairs

local httpd = {}

local http_status_msg = {
	[100] = "Continue",
	[101] = "Switching Protocols",
	[200] = "OK",
	[201] = "Created",
	[202] = "Accepted",
	[203] = "Non-Authoritative Information",
	[204] = "No Content",
	[205] = "Reset Content",
	[206] = "Partial Content",
	[300] = "Multiple Choices",
	[301] = "Moved Permanently",
	[302] = "Found",
	[303] = "See Other",
	[304] = "Not Modified",
	[305] = "Use Proxy",
	[307] = "Temporary Redirect",
	[308] = "Permanent Redirect",
	[400] = "Bad Request",
	[401] = "Unauthorized",
	[402] = "Payment Required",
	[403] = "Forbidden",
	[404] = "Not Found",
	[405] = "Method Not Allowed",
	[406] = "Not Acceptable",
	[407] = "Proxy Authentication Required",
	[408] = "Request Time-out",
	[409] = "Conflict",
	[410] = "Gone",
	[411] = "Length Required",
	[412] = "Precondition Failed",
	[413] = "Request Entity Too Large",
	[414] = "Request-URI Too Large",
	[415] = "Unsupported Media Type",
	[416] = "Requested range not satisfiable",
	[417] = "Expectation Failed",
	[426] = "Upgrade Required",
	[500] = "Internal Server Error",
	[501] = "Not Implemented",
	[502] = "Bad Gateway",
	[503] = "Service Unavailable",
	[504] = "Gateway Time-out",
	[505] = "HTTP Version not supported",
}

httpd.status_message = http_status_msg

local function read(readbytes, bodylimit)
	local lines = {}
	local rest = internal.recvheader(readbytes, lines, "")
	if not rest then
		return 413
	end
	local method, url, version = (lines[1] or ""):match "^(%a+) +([^ ]+) +HTTP/(%d%.%d)$"
	if not method then
		return 400
	end
	version = tonumber(version)
	if version < 1.0 or version > 1.1 then
		return 505
	end
	local header = internal.parseheader(lines, 2, {})
	if not header then
		return 400
	end
	local ok, mode = pcall(internal.transfer_mode, header)
	if not ok then
		return 501
	end
	local body
	if mode == "chunked" then
		local code
		body, code, rest = internal.recvchunkedbody(readbytes, bodylimit, header, rest)
		if not body then
			return code
		end
	else
		local length = internal.content_length(header)
		if length == false then
			return 400
		end
		length = length or 0
		if bodylimit and length > bodylimit then
			return 413
		end
		if #rest >= length then
			body, rest = rest:sub(1, length), rest:sub(length + 1)
		else
			body, rest = rest .. readbytes(length - #rest), ""
		end
	end
	internal.unread(readbytes, rest)
	return 200, url, method, header, body
end

function httpd.read_request(readbytes, bodylimit)
	local ok, code, url, method, header, body = pcall(read, readbytes, bodylimit)
	if ok then
		return code, url, method, header, body
	end
	return nil, code
end

-- The status line and header fields, with the body's framing.
local function head(statuscode, body, header)
	local out = { format("HTTP/1.1 %03d %s\r\n", statuscode, http_status_msg[statuscode] or "") }
	local has_length = false
	if header then
		for k, v in pairs(header) do
			internal.field_lines(out, k, v)
			local name = tostring(k):lower()
			if name == "content-length" or name == "transfer-encoding" then
				has_length = true
			end
		end
	end
	local t = type(body)
	if t == "string" then
		if not has_length then
			out[#out + 1] = format("content-length: %d\r\n", #body)
		end
	elseif t == "function" then
		out[#out + 1] = "transfer-encoding: chunked\r\n"
	elseif t == "nil" then
		if not has_length and statuscode >= 200 and statuscode ~= 204 and statuscode ~= 304 then
			out[#out + 1] = "content-length: 0\r\n"
		end
	else
		error(format("Invalid body type %s (need a string, a function or nil)", t))
	end
	out[#out + 1] = "\r\n"
	return out
end

local function write(writefunc, statuscode, body, header)
	local out = head(statuscode, body, header)
	if type(body) == "string" then
		if #body <= 4096 then
			out[#out + 1] = body
			writefunc(concat(out))
		else
			writefunc(concat(out))
			writefunc(body)
		end
	elseif type(body) == "function" then
		writefunc(concat(out))
		while true do
			local s = body()
			if s == nil then
				writefunc("0\r\n\r\n")
				break
			end
			if #s > 4096 then
				writefunc(format("%x\r\n", #s))
				writefunc(s)
				writefunc("\r\n")
			elseif s ~= "" then
				writefunc(format("%x\r\n%s\r\n", #s, s))
			end
		end
	else
		writefunc(concat(out))
	end
end

-- write_response(write, statuscode [, body [, header]]) -> true | false, err.
-- body: a string (sent with content-length), a function giving the pieces
-- of a chunked body until nil, or nil (no body).
function httpd.write_response(...)
	return pcall(write, ...)
end

return httpd
