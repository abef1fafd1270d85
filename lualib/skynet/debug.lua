-- skynet.debug: the `debug` protocol, which every service answers.
--
-- Commands: MEM, GC, STAT, KILLTASK, TASK, UNIQTASK, INFO, EXIT, RUN, TERM,
-- REMOTEDEBUG, SUPPORT, PING, LINK, TRACELOG; reg_debugcmd(name, f) adds
-- more.  skynet.lua calls init(skynet, export) when it makes the less used
-- part of its API, and installs the returned handler on the first `debug`
-- message; the command table is made then.  `export` holds what RUN and
-- REMOTEDEBUG need from skynet.lua: dispatch (skynet.dispatch_message),
-- suspend, and resume (resumes a thread as the running skynet thread).

local fmt = string.format
local tpack = table.pack
local type, tostring, pcall, error, assert = type, tostring, pcall, error, assert

local extra_commands = {}	-- filled by reg_debugcmd
local info_provider	-- set by skynet.info_func, used by INFO

local M = {}

function M.reg_debugcmd(name, fn)
	extra_commands[name] = fn
end

---------------------------------------------------------------- commands

local function build_commands(skynet, export)
	local cmd = {}

	function cmd.MEM()
		skynet.ret(skynet.pack(collectgarbage "count"))
	end

	local collecting = false
	function cmd.GC()
		if collecting then
			return
		end
		collecting = true
		local before, t0 = collectgarbage "count", skynet.now()
		collectgarbage "collect"
		skynet.yield()	-- GC requests queued meanwhile are skipped
		local after, t1 = collectgarbage "count", skynet.now()
		skynet.error(fmt("GC %.2f Kb -> %.2f Kb, cost %.2f sec", before, after, (t1 - t0) / 100))
		collecting = false
	end

	function cmd.STAT()
		skynet.ret(skynet.pack {
			task = skynet.task(),
			mqlen = skynet.stat "mqlen",
			cpu = skynet.stat "cpu",
			message = skynet.stat "message",
		})
	end

	function cmd.KILLTASK(name)
		local co = skynet.killthread(name)
		if co then
			skynet.error(fmt("Kill %s", co))
			skynet.ret()
		else
			skynet.error(fmt("Kill %s : Not found", name))
			skynet.ret(skynet.pack "Not found")
		end
	end

	function cmd.TASK(session)
		if session then
			skynet.ret(skynet.pack(skynet.task(session)))
		else
			local list = {}
			skynet.task(list)
			skynet.ret(skynet.pack(list))
		end
	end

	function cmd.UNIQTASK()
		skynet.ret(skynet.pack(skynet.uniqtask()))
	end

	function cmd.INFO(...)
		if info_provider then
			skynet.ret(skynet.pack(info_provider(...)))
		else
			skynet.ret(skynet.pack(nil))
		end
	end

	function cmd.EXIT()
		skynet.exit()
	end

	function cmd.RUN(source, filename, ...)
		local inject = require "skynet.inject"
		local ok, output = inject(skynet, source, filename, tpack(...), export.dispatch, skynet.register_protocol)
		collectgarbage "collect"
		skynet.ret(skynet.pack(ok, table.concat(output, "\n")))
	end

	function cmd.TERM(service)
		skynet.term(service)
	end

	function cmd.REMOTEDEBUG(...)
		local ok, remotedebug = pcall(require, "skynet.remotedebug")
		if not ok then
			error("REMOTEDEBUG is not supported: " .. tostring(remotedebug))
		end
		remotedebug.start(export, ...)
	end

	function cmd.SUPPORT(pname)
		return skynet.ret(skynet.pack(skynet.dispatch(pname) ~= nil))
	end

	function cmd.PING()
		return skynet.ret()
	end

	function cmd.LINK()
		skynet.response()	-- never answered: the caller fails when we exit
	end

	function cmd.TRACELOG(proto, flag)
		if type(proto) ~= "string" then
			flag = proto
			proto = "lua"
		end
		skynet.error(fmt("Turn trace log %s for %s", flag, proto))
		skynet.traceproto(proto, flag)
		skynet.ret()
	end

	return cmd
end

-- Adds skynet.info_func (the provider of INFO) and returns the handler of
-- the `debug` protocol; it makes the command table on its first message.
function M.init(skynet, export)
	function skynet.info_func(f)
		info_provider = f
	end
	local commands
	return function(_, _, name, ...)
		if commands == nil then
			commands = build_commands(skynet, export)
		end
		local f = commands[name] or extra_commands[name]
		assert(f, name)
		f(...)
	end
end

return M
