-- call / ret / retpack / response and how errors reach callers.
-- Lines start with "t_call:"; the last one is "t_call: done".
local skynet = require "skynet"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_call:", ...)
end

if mode == "callee" then
	local pending = {}	-- deferred responses, FIFO
	local cmd = {}

	function cmd.echo(...)
		skynet.retpack(...)
	end

	function cmd.nothing()
		log("ret of a call", skynet.ret())
	end

	function cmd.raise(text)
		error(text)
	end

	function cmd.forget()
		-- returns without answering
	end

	function cmd.ignore()
		skynet.ignoreret()
	end

	function cmd.context()
		local session, source = skynet.context()
		skynet.retpack(session, source)
	end

	function cmd.sent()
		local session, source = skynet.context()
		log("context of a send", session, skynet.address(source))
		log("ret of a send", skynet.ret(skynet.pack("dropped")))
	end

	function cmd.defer()
		local resp = skynet.response()
		pending[#pending + 1] = resp
		log("deferred, pending", resp "TEST")
	end

	function cmd.flush(ok, ...)
		local resp = table.remove(pending, 1)
		log("answer", resp(ok, ...))
		log("pending after answer", resp "TEST")
		local again, err = pcall(resp, true, "twice")
		log("answer twice", again, err)
		skynet.retpack(true)
	end

	function cmd.relay(dest, ...)
		-- hand the request over to `dest`; it answers our caller directly
		local session, source = skynet.context()
		skynet.ignoreret()
		skynet.redirect(dest, source, "lua", session, skynet.pack("echo", ...))
	end

	function cmd.raw(...)
		skynet.ret(skynet.pack("raw", ...))
	end

	skynet.start(function()
		skynet.dispatch("lua", function(session, source, name, ...)
			cmd[name](...)
		end)
	end)
	return
end

skynet.start(function()
	local callee = skynet.newservice(SERVICE_NAME, "callee")

	log("echo", skynet.call(callee, "lua", "echo", 1, "two", true, nil, 5))
	log("select n", select("#", skynet.call(callee, "lua", "echo", 1, nil)))
	log("empty reply", select("#", skynet.call(callee, "lua", "nothing")))

	-- a handler error: the caller fails, the callee logs it and goes on
	local ok, err = pcall(skynet.call, callee, "lua", "raise", "boom in handler")
	log("raise", ok, err:match("call failed$") and "call failed" or err)
	log("callee still serves", skynet.call(callee, "lua", "echo", "alive"))

	-- invalid addresses
	ok, err = pcall(skynet.call, 0x00ffff00, "lua", "echo")
	log("dead handle", ok, err:match("call to invalid address .*$"))
	ok, err = pcall(skynet.call, ".no_such_name", "lua", "echo")
	log("unknown name", ok, err:match("call to invalid address .*$"))
	log("send to dead handle", skynet.send(0x00ffff00, "lua", "x"))

	-- context
	local session, source = skynet.call(callee, "lua", "context")
	log("context", session > 0, source == skynet.self())
	skynet.send(callee, "lua", "sent")

	-- forgotten and ignored answers: the caller is never answered
	local answered = {}
	skynet.fork(function()
		skynet.call(callee, "lua", "forget")
		answered.forget = true
	end)
	skynet.fork(function()
		skynet.call(callee, "lua", "ignore")
		answered.ignore = true
	end)
	skynet.sleep(10)
	log("forget answered", tostring(answered.forget), "ignore answered", tostring(answered.ignore))

	-- deferred responses
	local results = {}
	skynet.fork(function()
		results[1] = table.pack(pcall(skynet.call, callee, "lua", "defer"))
	end)
	skynet.fork(function()
		results[2] = table.pack(pcall(skynet.call, callee, "lua", "defer"))
	end)
	skynet.sleep(5)
	log("before flush", tostring(results[1]), tostring(results[2]))
	skynet.call(callee, "lua", "flush", true, "later", 42)
	skynet.call(callee, "lua", "flush", false)
	skynet.yield()
	log("deferred 1", table.unpack(results[1], 1, results[1].n))
	log("deferred 2", results[2][1], results[2][2]:match("call failed$"))

	-- rawcall / rawsend
	local msg, sz = skynet.rawcall(callee, "lua", skynet.pack("raw", "x", 7))
	log("rawcall", type(msg), sz > 0, skynet.unpack(msg, sz))
	log("rawsend", skynet.rawsend(callee, "lua", skynet.pack("sent")))

	-- redirect: the relay forwards our request, the echo answers us
	local relay = skynet.newservice(SERVICE_NAME, "callee")
	log("redirect", skynet.call(relay, "lua", "relay", callee, "via relay"))

	skynet.sleep(5)
	log "done"
	skynet.abort()
end)
