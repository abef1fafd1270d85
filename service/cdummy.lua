-- cdummy: the `.cslave` of a single-node process (harbor id 0).
--
-- There is no master and no other node: global names are kept in a local
-- table and forwarded to the native `harbor` service (as "N <name>" with the
-- bound handle as the message source), which delivers messages sent to
-- global names. The harbor, started with id 0, marks every remote node down.
--
-- lua commands (same names as cslave):
--   REGISTER(name, handle)  bind a global name (one-way)
--   QUERYNAME(name)         handle of the name; waits until it is registered
--   LINK(id)                returns at once (there is never a remote link)
--   CONNECT(id)             logs an error and never answers
-- Text messages from the harbor are ignored. Any other command is an error.

local skynet = require "skynet"
require "skynet.manager"	-- skynet.launch

local names = {}	-- global name -> handle
local waiters = {}	-- global name -> { response, ... }
local harbor_service	-- handle of the native harbor module

-- Messages to the harbor are raw text (PTYPE_HARBOR = 5).
skynet.register_protocol {
	name = "harbor",
	id = skynet.PTYPE_HARBOR,
	pack = function(...) return ... end,
	unpack = skynet.tostring,
}

skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	pack = function(...) return ... end,
	unpack = skynet.tostring,
}

local command = {}

function command.REGISTER(name, handle)
	assert(names[name] == nil)
	names[name] = handle
	local queue = waiters[name]
	if queue then
		waiters[name] = nil
		for _, resp in ipairs(queue) do
			resp(true, handle)
		end
	end
	skynet.redirect(harbor_service, handle, "harbor", 0, "N " .. name)
end

function command.QUERYNAME(name)
	if name:byte() == 46 then	-- '.': a local name
		skynet.ret(skynet.pack(skynet.localname(name)))
		return
	end
	local handle = names[name]
	if handle then
		skynet.ret(skynet.pack(handle))
		return
	end
	local queue = waiters[name]
	if queue == nil then
		queue = {}
		waiters[name] = queue
	end
	queue[#queue + 1] = skynet.response()
end

function command.LINK(id)
	skynet.ret()
end

function command.CONNECT(id)
	skynet.error("Can't connect to other harbor in single node mode")
end

skynet.start(function()
	local harbor_id = tonumber(skynet.getenv "harbor")
	assert(harbor_id == 0)

	skynet.dispatch("lua", function(session, source, cmd, ...)
		local f = assert(command[cmd])
		f(...)
	end)
	skynet.dispatch("text", function(session, source, cmd)
		-- nothing to do on a single node
	end)

	harbor_service = assert(skynet.launch("harbor", harbor_id, skynet.self()))
end)
