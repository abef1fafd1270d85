-- snax_counter: the snax service of t_snax and t_snax_global. A counter
-- with methods of both kinds; the system functions log what they receive.
-- Its top level only defines things: clients run it to learn the method ids.
local skynet = require "skynet"
local snax = require "skynet.snax"

local n = 0
local label

local function bump(v)
	n = n + v
end

function accept.add(v)
	bump(v)
end

function response.get()
	return n
end

function response.echo(...)
	return ...
end

function response.fail(why)
	error("snax_counter failed: " .. why)
end

function accept.fail(why)
	error("snax_counter accept failed: " .. why)
end

function response.whoami()
	local me = snax.self()
	return tostring(me), me.handle == skynet.self(), me.type, SERVICE_NAME
end

function accept.quit(...)
	snax.exit(...)
end

-- sleeps, so that its profile time can be compared with the wall time
function response.slow(cs)
	skynet.sleep(cs)
	return n
end

-- a module of the service's own folder (SERVICE_PATH is on package.path)
function response.helper()
	local helper = require "counter_helper"
	return helper.greeting(), SERVICE_PATH:match("[^/]+/$")
end

function init(...)
	label = ...
	LABEL = label
	skynet.error("snax_counter: init", label, select("#", ...))
	snax.enablecluster()
end

function exit(...)
	skynet.error("snax_counter: exit", label, ...)
end
