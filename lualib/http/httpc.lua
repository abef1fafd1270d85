-- http.httpc: an HTTP/1.1 client, one connection per request.
--
-- httpc.request(method, host, url [, recvheader [, header [, content]]])
--   -> status, body; host is "name", "name:port", "1.2.3.4[:port]",
--   "[v6][:port]", each optionally after "http://". Response header fields go
--   into `recvheader`. Raises on failure (sockethelper.socket_error when the
--   connection failed or timed out).
-- httpc.timeout: 1/100 s for the whole request (connect included); nil waits.
-- httpc.dns([server [, port]]): resolve host names with skynet.dns (else the
--   socket layer resolves them).
local skynet = require "skynet"
local socket = require "http.sockethelper"
local internal = require "http.internal"

local format = string.format
local pcall, error, pairs, tonumber, tostring = pcall, error, pairs, tonumber, tostring

local httpc = {}

local dns	-- skynet.dns once httpc.dns was called

function httpc.dns(server, port)
	dns = require "skynet.dns"
	dns.server(server, port)
end

local default_port = { http = 80, https = 443 }

local function is_ipv4(h)
	return h:find "^%d+%.%d+%.%d+%.%d+$" ~= nil
end

-- host[:port] -> host, port or nil, kind ("ipv4", "ipv6", "hostname")
local function parse_host(s)
	local first = s:find(":", 1, true)
	if not first then
		return s, nil, is_ipv4(s) and "ipv4" or "hostname"
	end
	if s:find(":", first + 1, true) then
		local v6, port = s:match "^%[(.-)%]:?(%d*)$"
		if v6 then
			return v6, tonumber(port), "ipv6"
		end
		error(format("Invalid host: bare IPv6 address '%s', use '[%s]' instead", s, s))
	end
	local h, port = s:match "^(.-):(%d+)$"
	if not h then
		error(format("Invalid host: %s", s))
	end
	return h, tonumber(port), is_ipv4(h) and "ipv4" or "hostname"
end

-- "[proto://]host[:port]" -> protocol, hostname, port, kind, Host header
local function parse_url(s)
	local protocol, rest = s:match "^(%a+)://(.*)$"
	if protocol then
		protocol = protocol:lower()
	else
		protocol, rest = "http", s
	end
	local hostname, port, kind = parse_host(rest)
	port = port or default_port[protocol]
	if not port then
		error("Invalid protocol: " .. protocol)
	end
	return protocol, hostname, port, kind, rest
end

local function gen_interface(protocol, fd, hostname)
	if protocol == "http" then
		return {
			read = socket.readfunc(fd),
			write = socket.writefunc(fd),
			readall = function()
				return socket.readall(fd)
			end,
		}
	elseif protocol == "https" then
		local tls = require "http.tlshelper"
		httpc.sslctx = httpc.sslctx or tls.newctx()
		local ctx = tls.newtls("client", httpc.sslctx, hostname)
		return {
			init = tls.init_requestfunc(fd, ctx),
			close = tls.closefunc(ctx),
			read = tls.readfunc(fd, ctx),
			write = tls.writefunc(fd, ctx),
			readall = tls.readallfunc(fd, ctx),
		}
	end
	error(format("Invalid protocol: %s", protocol))
end

local function connect(host, timeout)
	local protocol, hostname, port, kind, hostheader = parse_url(host)
	local addr = hostname
	if kind == "hostname" and dns then
		local ip, msg = dns.resolve(hostname)
		if not ip then
			error(format("%s dns resolve failed msg:%s", hostname, msg))
		end
		addr = ip
	end
	local fd = socket.connect(addr, port, timeout)
	local interface = gen_interface(protocol, fd, kind == "hostname" and hostname or nil)
	if timeout then
		skynet.timeout(timeout, function()
			if not interface.finish then
				interface.timed_out = true
				socket.shutdown(fd)	-- the pending read fails; closed by the request
			end
		end)
	end
	if interface.init then
		interface.init(kind == "hostname" and hostname or nil)
	end
	return fd, interface, hostheader
end

local function close_interface(interface, fd)
	interface.finish = true
	socket.close(fd)
	if interface.close then
		interface.close()
		interface.close = nil
	end
end

-- The error to raise for a failed request: a timeout says so.
local function failure(interface, err, host)
	if interface.timed_out then
		return socket.socket_error(format("http request to %s timeout (%s)", host, tostring(httpc.timeout)))
	end
	return err
end

function httpc.request(method, host, url, recvheader, header, content)
	local fd, interface, hostheader = connect(host, httpc.timeout)
	local ok, code, body, h = pcall(internal.request, interface, method, hostheader, url, recvheader, header, content)
	if ok then
		ok, body = pcall(internal.response, interface, code, body, h)
	else
		body = code
	end
	close_interface(interface, fd)
	if ok then
		return code, body
	end
	error(failure(interface, body, host))
end

function httpc.head(host, url, recvheader, header, content)
	local fd, interface, hostheader = connect(host, httpc.timeout)
	local ok, code = pcall(internal.request, interface, "HEAD", hostheader, url, recvheader, header, content)
	close_interface(interface, fd)
	if ok then
		return code
	end
	error(failure(interface, code, host))
end

-- request_stream(...) -> stream: the status in stream.status, the header in
-- stream.header; `for piece, s in stream do ... end` reads the body. The
-- timeout covers the request and its header, not the body.
function httpc.request_stream(method, host, url, recvheader, header, content)
	local fd, interface, hostheader = connect(host, httpc.timeout)
	local ok, code, body, h = pcall(internal.request, interface, method, hostheader, url, recvheader, header, content)
	interface.finish = true	-- the timeout no longer shuts the socket
	local function close_fd()
		close_interface(interface, fd)
	end
	if not ok then
		close_fd()
		error(failure(interface, code, host))
	end
	local ok2, stream = pcall(internal.response_stream, interface, code, body, h)
	if not ok2 then
		close_fd()
		error(stream)
	end
	stream._onclose = close_fd
	return stream
end

function httpc.get(...)
	return httpc.request("GET", ...)
end

local function escape(s)
	return (tostring(s):gsub("[^%w_]", function(c)
		return format("%%%02X", c:byte())
	end))
end

-- post(host, url, form [, recvheader]): form is sent urlencoded.
function httpc.post(host, url, form, recvheader)
	local header = {
		["content-type"] = "application/x-www-form-urlencoded",
	}
	local body = {}
	for k, v in pairs(form) do
		body[#body + 1] = format("%s=%s", escape(k), escape(v))
	end
	return httpc.request("POST", host, url, recvheader, header, table.concat(body, "&"))
end

return httpc
