-- cluster_echo: the service the cluster tests talk to across nodes.
-- Argument: a global name to register (optional).
--
-- lua commands (answered when called, ignored when sent):
--   echo(...)                 returns its arguments
--   size(s)                   #s
--   blob(n)                   a string of n bytes
--   seq(i)                    ordered-delivery check: counts, and counts gaps
--   seqstat() / seqreset()    count, gaps, last / reset
--   hang()                    never answers
--   busy(ms)                  keeps its worker busy for ms, then returns ms
--   register_later(name, cs)  launches another cluster_echo named `name` after cs
--   dc_get(...) / dc_set(...) datacenter.get / set from this node
--   unique(name)              skynet.uniqueservice(true, name) from this node
local skynet = require "skynet"
local datacenter = require "skynet.datacenter"
require "skynet.manager"

local name = ...
local seq_count, seq_last, seq_bad = 0, 0, 0
local cmd = {}

function cmd.echo(...)
	return ...
end

function cmd.size(s)
	return #s
end

function cmd.blob(n)
	return string.rep("b", n)
end

function cmd.seq(i)
	seq_count = seq_count + 1
	if i ~= seq_last + 1 then
		seq_bad = seq_bad + 1
	end
	seq_last = i
end

function cmd.seqstat()
	return seq_count, seq_bad, seq_last
end

function cmd.seqreset()
	seq_count, seq_last, seq_bad = 0, 0, 0
	return true
end

function cmd.hang()
	skynet.wait()
end

function cmd.busy(ms)
	local t0 = skynet.hpc()
	while skynet.hpc() - t0 < ms * 1000000 do end
	return ms
end

function cmd.register_later(newname, ti)
	skynet.timeout(ti, function()
		skynet.newservice("cluster_echo", newname)
	end)
	return true
end

function cmd.dc_get(...)
	return datacenter.get(...)
end

function cmd.dc_set(...)
	return datacenter.set(...)
end

function cmd.unique(svc)
	return skynet.uniqueservice(true, svc)
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, c, ...)
		local f = assert(cmd[c], c)
		if session == 0 then
			f(...)
		else
			skynet.retpack(f(...))
		end
	end)
	if name then
		skynet.register(name)
	end
end)
