-- skynet.queue critical sections, and the deprecated skynet.mqueue.
-- Lines start with "t_queue:"; the last one is "t_queue: done".
local skynet = require "skynet"
local queue = require "skynet.queue"
require "skynet.manager"

local mode = ...

local function log(...)
	skynet.error("t_queue:", ...)
end

if mode == "mq" then
	local mqueue = require "skynet.mqueue"
	skynet.start(function()
		mqueue.register(function(cmd, i)
			if cmd == "work" then
				log("mq start", i)
				skynet.sleep(2)
				log("mq end", i)
				return i * 10
			elseif cmd == "fail" then
				error "mq handler fails"
			elseif cmd == "note" then
				log("mq note", i, "size", mqueue.size())
			end
		end)
	end)
	return
end

local function critical_sections()
	local cs = queue()
	local seq = {}
	local function add(v) seq[#seq + 1] = v end
	for i = 1, 3 do
		skynet.fork(function()
			cs(function()
				add("in" .. i)
				skynet.sleep(2)
				add("out" .. i)
			end)
		end)
	end
	skynet.fork(function()
		add "free"	-- not in the section: runs at once
	end)
	skynet.sleep(20)
	log("cs order", table.concat(seq, " "))

	-- reentrant for the owner, results are returned
	log("nested", cs(function(a, b)
		return cs(function() return a + b, "inner" end)
	end, 1, 2))

	-- an error is raised to the caller and releases the section
	local ok, err = pcall(cs, function() error "boom in cs" end)
	log("error", ok, tostring(err):match("boom in cs") ~= nil)
	log("usable after error", cs(function() return "yes" end))
end

local function mqueues()
	local mqueue = require "skynet.mqueue"
	local q = skynet.newservice(SERVICE_NAME, "mq")
	local results = {}
	for i = 1, 3 do
		skynet.fork(function()
			results[i] = mqueue.call(q, "work", i)
		end)
	end
	skynet.sleep(20)
	log("mq results", results[1], results[2], results[3])
	local ok, err = pcall(mqueue.call, q, "fail")
	log("mq error", ok, tostring(err):match("mq handler fails") ~= nil)
	mqueue.send(q, "note", "sent")
	log("mq after error", mqueue.call(q, "work", 4))
end

skynet.start(function()
	critical_sections()
	mqueues()
	log "done"
	skynet.abort()
end)
