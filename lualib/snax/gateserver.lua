-- snax.gateserver: the gate framework of skynet. `start(handler)` turns the
-- calling service into a gate: `lua` commands `open(conf)` and `close`
-- (others go to handler.command), client streams framed by skynet.netpack.
--
-- handler: connect(fd, addr) and message(fd, msg, sz) are required;
-- open(source, conf), disconnect(fd), error(fd, text), warning(fd, kb),
-- command(cmd, source, ...) are optional; embed = true means the caller runs
-- skynet.start itself. `msg, sz` of message is a block the handler owns:
-- redirect it, or free it with netpack.tostring / skynet.trash.
--
-- conf of open: address ("0.0.0.0"), port, backlog, maxclient (1024; as in
-- skynet at most maxclient - 1 clients are served), nodelay, and ours:
-- maxpacket (65535: a frame header announcing more closes the client) and
-- timeout (centiseconds, 3000; 0 turns it off: a client whose frame stays
-- unfinished that long is closed, against slow-trickle senders).
--
-- Where skynet's gate has faults, this one guarantees (see
-- docs/runtime-semantics.md, "Gates"): every fd given to handler.connect gets
-- exactly one handler.disconnect or handler.error, whatever ends it (the
-- peer's close, an error, closeclient, bad input); a client that half-closes
-- is reported at once and closed by closeclient or at the latest 1 s later
-- (no CLOSE_WAIT; answers written meanwhile still go out); frames that
-- arrived before a close or an error are delivered before it; the client
-- count drops exactly once per client.

local skynet = require "skynet"
local netpack = require "skynet.netpack"
local driver = require "skynet.socketdriver"

local gateserver = {}

local listen_id   -- the listening socket
local queue       -- netpack queue
local maxclient
local maxpacket = 65535
local timeout = 3000
local nodelay = false
local client_number = 0
local handler_ref
-- fd -> address, for every client counted in client_number
local connection = {}
local CMD = setmetatable({}, { __gc = function() netpack.clear(queue) end })

-- fds whose peer half-closed: still open for the answers on their way,
-- closed by closeclient or after LINGER centiseconds
local lingering = {}
local LINGER = 100

-- Ends fd once: uncounts it, closes the socket (at once, or after LINGER
-- when `linger`), tells the handler.
local function finish(fd, err, linger)
	if connection[fd] == nil then
		if lingering[fd] then
			lingering[fd] = nil
			driver.close(fd)
		end
		return false
	end
	connection[fd] = nil
	client_number = client_number - 1
	if linger then
		lingering[fd] = true
		skynet.timeout(LINGER, function()
			if lingering[fd] then
				lingering[fd] = nil
				driver.close(fd)
			end
		end)
	else
		driver.close(fd)
	end
	local h = handler_ref
	if err ~= nil and h.error then
		h.error(fd, err)
	elseif h.disconnect then
		h.disconnect(fd)
	end
	return true
end

function gateserver.openclient(fd)
	if connection[fd] then
		driver.start(fd)
	end
end

function gateserver.closeclient(fd)
	finish(fd)
end

-- How many clients are counted now (tests, monitoring).
function gateserver.clients()
	return client_number
end

function gateserver.start(handler)
	assert(handler.message)
	assert(handler.connect)
	handler_ref = handler

	local listen_wait

	local function dispatch_msg(fd, msg, sz)
		if connection[fd] then
			handler.message(fd, msg, sz)
		else
			skynet.error(string.format("Drop message from fd (%d) : %s", fd, netpack.tostring(msg, sz)))
		end
	end

	local function dispatch_queue()
		local fd, msg, sz = netpack.pop(queue)
		if fd then
			-- a blocking handler.message must not hold the rest of the queue
			skynet.fork(dispatch_queue)
			dispatch_msg(fd, msg, sz)
			for fd2, msg2, sz2 in netpack.pop, queue do
				dispatch_msg(fd2, msg2, sz2)
			end
		end
	end

	-- Frames queued before an fd ends are its own: deliver them first.
	local function drain()
		for fd, msg, sz in netpack.pop, queue do
			dispatch_msg(fd, msg, sz)
		end
	end

	local function sweep()
		if timeout <= 0 then
			return
		end
		skynet.timeout(math.max(timeout // 4, 10), sweep)
		if not queue then
			return
		end
		for _, fd in ipairs(netpack.incomplete(queue, timeout)) do
			if connection[fd] then
				skynet.error(string.format(
					"gateserver: close fd %d (%s): a packet unfinished for more than %.2fs (slow sender)",
					fd, connection[fd], timeout / 100))
				drain()
				finish(fd, "slow sender")
			end
		end
	end

	function CMD.open(source, conf)
		assert(not listen_id, "gateserver: already open")
		local address = conf.address or "0.0.0.0"
		local port = conf.port
		maxclient = conf.maxclient or 1024
		nodelay = conf.nodelay
		maxpacket = conf.maxpacket or 65535
		timeout = conf.timeout or 3000
		skynet.error("Listen on", address, port)
		listen_id = driver.listen(address, port, conf.backlog)
		listen_wait = { co = coroutine.running(), fd = listen_id }
		skynet.wait(listen_wait.co)
		conf.address = listen_wait.addr
		conf.port = listen_wait.port
		listen_wait = nil
		driver.start(listen_id)
		skynet.fork(sweep)
		if handler.open then
			return handler.open(source, conf)
		end
	end

	function CMD.close()
		assert(listen_id, "gateserver: not open")
		driver.close(listen_id)
	end

	local MSG = {}

	MSG.data = dispatch_msg
	MSG.more = dispatch_queue

	function MSG.open(fd, addr)
		if client_number + 1 >= maxclient then
			skynet.error(string.format("gateserver: refuse fd %d (%s): maxclient %d reached", fd, addr, maxclient))
			driver.close(fd)
			return
		end
		client_number = client_number + 1
		connection[fd] = addr
		if nodelay then
			driver.nodelay(fd)
		end
		handler.connect(fd, addr)
	end

	function MSG.close(fd)
		if fd == listen_id then
			listen_id = nil
			return
		end
		drain()
		finish(fd, nil, true)
	end

	function MSG.error(fd, text)
		if fd == listen_id then
			skynet.error("gateserver accept error:", text)
			return
		end
		if connection[fd] then
			skynet.error(string.format("gateserver: close fd %d (%s): %s", fd, connection[fd], text))
		end
		drain()
		finish(fd, text)
	end

	function MSG.warning(fd, size)
		if handler.warning then
			handler.warning(fd, size)
		end
	end

	function MSG.init(id, addr, port)
		local w = listen_wait
		if w and w.co and id == w.fd then
			local co = w.co
			w.addr = addr
			w.port = port
			w.co = nil
			skynet.wakeup(co)
		end
	end

	skynet.register_protocol {
		name = "socket",
		id = skynet.PTYPE_SOCKET,
		unpack = function(msg, sz)
			return netpack.filter(queue, msg, sz, maxpacket)
		end,
		dispatch = function(_, _, q, type, ...)
			queue = q
			if type then
				MSG[type](...)
			end
		end,
	}

	local function init()
		skynet.dispatch("lua", function(_, address, cmd, ...)
			local f = CMD[cmd]
			if f then
				skynet.ret(skynet.pack(f(address, ...)))
			else
				skynet.ret(skynet.pack(handler.command(cmd, address, ...)))
			end
		end)
	end

	if handler.embed then
		init()
	else
		skynet.start(init)
	end
end

return gateserver
