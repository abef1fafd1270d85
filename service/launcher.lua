-- launcher (`.launcher`): creates services on behalf of skynet.newservice and
-- keeps the list of everything it started.
--
-- A LAUNCH request is answered only once the new service reports back:
--   LAUNCHOK (lua, or text "")  -> the caller receives the new handle
--   ERROR    (lua, or text "ERROR", e.g. from the native snlua loader)
--                               -> the caller's call fails
--   REMOVE(handle, false) before LAUNCHOK (the service exited during its
--                                init)  -> the caller receives nothing (nil)
-- If the kernel cannot create the service at all the call fails at once.
--
-- Other lua commands (names are case-insensitive):
--   LOGLAUNCH(mod, ...)  LAUNCH + LOGON for the new service
--   LIST                 { [":%08x"] = "mod args" }
--   STAT(ti) MEM(ti) GC(ti)
--                        ask every service through the debug protocol, waiting
--                        at most `ti` centiseconds (nil = no limit); failures
--                        read "ERROR", services that did not answer "TIMEOUT"
--   KILL(handle)         kill a service, returns { [":%08x"] = "mod args" }
--   REMOVE(handle, kill) forget a service (no reply)
--   QUERY(session)       handle currently being launched for that request
-- Unknown commands are answered with { "Unknown command" }.

local skynet = require "skynet"
local core = require "skynet.core"
require "skynet.manager"	-- skynet.launch, skynet.kill

local services = {}	-- handle -> "module args"
local pending = {}	-- handle -> response closure of its LAUNCH request
local launch_sessions = {}	-- handle -> session of its LAUNCH request

local NO_REPLY = {}	-- a command returning this answers on its own (or never)

local command = {}

-- Settles the pending LAUNCH request of `handle`, if any.
local function settle(handle, ...)
	local resp = pending[handle]
	if resp then
		pending[handle] = nil
		launch_sessions[handle] = nil
		resp(...)
		return true
	end
	return false
end

function command.LIST()
	local list = {}
	for handle, desc in pairs(services) do
		list[skynet.address(handle)] = desc
	end
	return list
end

-- Sends the debug request `...` to every known service and collects the
-- answers, formatted by `format(result, handle)`.
local function survey(ti, format, ...)
	local list = {}
	local outstanding = {}
	local req = skynet.request()
	for handle in pairs(services) do
		local r = { handle, "debug", ... }
		req:add(r)
		outstanding[r] = handle
	end
	for r, resp in req:select(ti) do
		local handle = r[1]
		outstanding[r] = nil
		if resp then
			list[skynet.address(handle)] = format(resp[1], handle)
		else
			list[skynet.address(handle)] = format("ERROR", handle)
		end
	end
	for _, handle in pairs(outstanding) do
		list[skynet.address(handle)] = format("TIMEOUT", handle)
	end
	return list
end

local function as_is(v)
	return v
end

local function format_mem(kb, handle)
	local desc = services[handle]
	if type(kb) == "string" then
		return string.format("%s (%s)", kb, desc)
	end
	return string.format("%.2f Kb (%s)", kb, desc)
end

function command.STAT(source, ti)
	return survey(ti, as_is, "STAT")
end

function command.MEM(source, ti)
	return survey(ti, format_mem, "MEM")
end

function command.GC(source, ti)
	for handle in pairs(services) do
		skynet.send(handle, "debug", "GC")
	end
	return command.MEM(source, ti)
end

function command.KILL(_, handle)
	skynet.kill(handle)
	local result = { [skynet.address(handle)] = tostring(services[handle]) }
	services[handle] = nil
	return result
end

function command.REMOVE(_, handle, kill)
	services[handle] = nil
	-- still booting: the service exited before LAUNCHOK. For a voluntary
	-- exit (kill == false) newservice returns nil; for a kill it fails.
	settle(handle, not kill)
	-- never reply: the sender may be gone already
	return NO_REPLY
end

local function launch(module, ...)
	local args = table.concat({ ... }, " ")
	local handle = skynet.launch(module, args)
	local session = skynet.context()
	local resp = skynet.response()
	if not handle then
		resp(false)
		return nil
	end
	services[handle] = module .. " " .. args
	pending[handle] = resp
	launch_sessions[handle] = session
	return handle
end

function command.LAUNCH(_, module, ...)
	launch(module, ...)
	return NO_REPLY
end

function command.LOGLAUNCH(_, module, ...)
	local handle = launch(module, ...)
	if handle then
		core.command("LOGON", skynet.address(handle))
	end
	return NO_REPLY
end

-- The service failed in its init (sent by skynet.init_service or snlua).
function command.ERROR(source)
	settle(source, false)
	services[source] = nil
	return NO_REPLY
end

-- The service finished its init.
function command.LAUNCHOK(source)
	settle(source, true, source)
	return NO_REPLY
end

function command.QUERY(_, session)
	for handle, s in pairs(launch_sessions) do
		if s == session then
			return handle
		end
	end
end

-- Text protocol, used by native code (snlua reports a failed loader with
-- "ERROR"; an empty text means the launch succeeded).
skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	unpack = skynet.tostring,
	dispatch = function(session, source, cmd)
		if cmd == "" then
			command.LAUNCHOK(source)
		elseif cmd == "ERROR" then
			command.ERROR(source)
		else
			error("Invalid text command " .. cmd)
		end
	end,
}

skynet.dispatch("lua", function(session, source, cmd, ...)
	local f = command[string.upper(cmd)]
	if not f then
		skynet.ret(skynet.pack { "Unknown command" })
		return
	end
	local result = f(source, ...)
	if result ~= NO_REPLY then
		skynet.ret(skynet.pack(result))
	end
end)

skynet.start(function() end)
