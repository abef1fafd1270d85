-- http.sockethelper: the read/write functions the http modules take, over
-- skynet.socket. A failed read or write raises `sockethelper.socket_error`
-- (one shared error object, so callers can test `err == socket_error`);
-- tostring of it gives the last failure's text once.
local skynet = require "skynet"
local socket = require "skynet.socket"
local internal = require "http.internal"

local error, setmetatable, tostring = error, setmetatable, tostring

local sockethelper = {}

local socket_error = setmetatable({}, {
	__tostring = function(self)
		local info = self.err_info
		self.err_info = nil
		return info or "[Socket Error]"
	end,
	-- socket_error(text) records the text and gives the error object back
	__call = function(self, info)
		self.err_info = "[Socket Error] : " .. tostring(info)
		return self
	end,
})
sockethelper.socket_error = socket_error

-- readfunc(fd [, pre]) -> read(sz): sz bytes, or what is there when sz is nil;
-- `pre` is data already read from fd, given out first.
function sockethelper.readfunc(fd, pre)
	local pending = pre ~= "" and pre or nil
	local function read(sz)
		if pending then
			local n = #pending
			if sz == nil or sz == n then
				local r = pending
				pending = nil
				return r
			elseif sz < n then
				local r = pending:sub(1, sz)
				pending = pending:sub(sz + 1)
				return r
			end
			local more = socket.read(fd, sz - n)
			if not more then
				error(socket_error("read failed fd = " .. fd))
			end
			local r = pending .. more
			pending = nil
			return r
		end
		local r = socket.read(fd, sz)
		if not r then
			error(socket_error("read failed fd = " .. fd))
		end
		return r
	end
	-- a parser that read past its message gives the rest back (keep-alive)
	internal.register_unread(read, function(s)
		pending = pending and s .. pending or s
	end)
	return read
end

-- Puts `s` back in front of what `read` gives next; false if `read` was not
-- made by readfunc (then the bytes are dropped, as skynet does).
sockethelper.unread = internal.unread

sockethelper.readall = socket.readall

-- writefunc(fd) -> write(data); data is a string or a table of strings.
function sockethelper.writefunc(fd)
	return function(content)
		if not socket.write(fd, content) then
			error(socket_error("write failed fd = " .. fd))
		end
	end
end

-- connect(host, port [, timeout]) -> fd; timeout in 1/100 s. Raises
-- socket_error when the connection fails or does not come in time.
function sockethelper.connect(host, port, timeout)
	local fd, err
	local timed_out = false
	if timeout then
		local co = coroutine.running()
		local waiting = true
		skynet.fork(function()
			local id, e = socket.open(host, port)
			if waiting then
				fd, err = id, e
				waiting = false
				skynet.wakeup(co)
			elseif id then
				-- connect already gave up on this one
				socket.close(id)
			end
		end)
		skynet.sleep(timeout)
		if waiting then
			waiting = false
			timed_out = true
		end
	else
		fd, err = socket.open(host, port)
	end
	if fd then
		return fd
	end
	error(socket_error(string.format(
		"connect failed host = %s port = %s timeout = %s err = %s is_time_out = %s",
		host, port, timeout, err, timed_out)))
end

function sockethelper.close(fd)
	socket.close(fd)
end

function sockethelper.shutdown(fd)
	socket.shutdown(fd)
end

return sockethelper
