-- skynet.mqueue (deprecated; prefer skynet.queue).
--
-- Messages of the "queue" protocol (PTYPE_QUEUE = 8) are buffered and handled
-- strictly one after another by a single worker coroutine, so a handler that
-- blocks delays every later "queue" message of this service.
--
--   mqueue.register(f)      f(...) handles each message
--   mqueue.call(addr, ...)  request; the handler's results (or its error)
--   mqueue.send(addr, ...)  one-way message; the handler must return nothing
--   mqueue.size()           number of buffered messages

local skynet = require "skynet"
local core = require "skynet.core"

local PTYPE_QUEUE = 8
local PTYPE_RESPONSE = 1

local mqueue = {}

local pending = {}	-- buffered messages: { session = s, addr = src, args... }
local idle_worker	-- worker coroutine parked while `pending` is empty
local registered = false

skynet.register_protocol {
	name = "queue",
	id = PTYPE_QUEUE,
	pack = skynet.pack,
	unpack = skynet.unpack,
	dispatch = function(session, source, ...)
		pending[#pending + 1] = { session = session, addr = source, ... }
		local co = idle_worker
		if co then
			idle_worker = nil
			skynet.wakeup(co)
		end
	end,
}

local function invoke(f, msg)
	return pcall(f, table.unpack(msg))
end

local worker

-- Handles one buffered message. A one-way message whose handler returns a
-- value or fails is reported by raising an error; a fresh worker is forked
-- first so the queue keeps being served.
local function handle(f, msg)
	local session = msg.session
	if session ~= 0 then
		local data, size = skynet.pack(invoke(f, msg))
		core.send(msg.addr, PTYPE_RESPONSE, session, data, size)
		return
	end
	local ok, result = invoke(f, msg)
	if ok then
		if result then
			skynet.fork(worker, f)
			error(string.format("[:%x] send a message to [:%x] return something",
				msg.addr, skynet.self()))
		end
	else
		skynet.fork(worker, f)
		error(string.format("[:%x] send a message to [:%x] throw an error : %s",
			msg.addr, skynet.self(), tostring(result)))
	end
end

function worker(f)
	while true do
		if pending[1] == nil then
			idle_worker = coroutine.running()
			skynet.wait()
		else
			handle(f, table.remove(pending, 1))
		end
	end
end

function mqueue.register(f)
	assert(not registered)
	registered = true
	skynet.fork(worker, f)
end

local function unwrap(ok, ...)
	if not ok then
		error(...)
	end
	return ...
end

function mqueue.call(addr, ...)
	return unwrap(skynet.call(addr, "queue", ...))
end

function mqueue.send(addr, ...)
	return skynet.send(addr, "queue", ...)
end

function mqueue.size()
	return #pending
end

return mqueue
