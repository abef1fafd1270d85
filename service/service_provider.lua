-- service_provider (unique): bookkeeping for skynet.service.
--
-- Each name owns one record:
--   queue    responses of callers waiting for the service (nil once settled)
--   booting  true while a launch is in progress
--   address  handle of the running service_cell
--   error    text of a failed launch
--   init     the launch arguments as "a,b,c"; time: when it was booted
--
-- lua commands:
--   test(name)              -> address | nil, true (booting) | nothing; raises
--                              if the launch failed
--   launch(name, code, ...) -> address; boots a service_cell running `code`
--   query(name)             -> address; waits until the name is booted
--   close(name)             -> address of the forgotten service (or nil while
--                              booting); the caller kills it

local skynet = require "skynet"

local provider = {}

-- Records are created on first access.
local records = setmetatable({}, {
	__index = function(t, name)
		local r = { queue = {} }
		t[name] = r
		return r
	end,
})

function provider.query(name)
	local r = records[name]
	if r.queue then
		r.queue[#r.queue + 1] = skynet.response()
	elseif r.address then
		skynet.ret(skynet.pack(r.address))
	else
		error(r.error)
	end
end

-- Sends the code to the new cell and records the launch details.
local function boot(addr, name, code, ...)
	local r = records[name]
	skynet.call(addr, "lua", "init", code, ...)
	local args = table.pack(...)
	if args.n > 0 then
		for i = 1, args.n do
			args[i] = tostring(args[i])
		end
		r.init = table.concat(args, ",")
	end
	r.time = skynet.time()
end

function provider.launch(name, code, ...)
	local r = records[name]
	if r.address then
		skynet.ret(skynet.pack(r.address))
		return
	end
	if r.booting then
		r.queue[#r.queue + 1] = skynet.response()
		return
	end

	r.booting = true
	local ok, addr = pcall(skynet.newservice, "service_cell", name)
	local err
	if ok then
		ok, err = xpcall(boot, debug.traceback, addr, name, code, ...)
	else
		err = addr
		addr = nil
	end
	r.booting = nil

	local waiters = r.queue
	r.queue = nil
	if ok then
		r.address = addr
		for _, resp in ipairs(waiters) do
			resp(true, addr)
		end
		skynet.ret(skynet.pack(addr))
	else
		if addr then
			skynet.send(addr, "debug", "EXIT")
		end
		r.error = err
		for _, resp in ipairs(waiters) do
			resp(false)
		end
		error(err)
	end
end

function provider.test(name)
	local r = records[name]
	if r.booting then
		skynet.ret(skynet.pack(nil, true))
	elseif r.address then
		skynet.ret(skynet.pack(r.address))
	elseif r.error then
		error(r.error)
	else
		skynet.ret()
	end
end

function provider.close(name)
	local r = records[name]
	if not r or r.booting then
		skynet.ret(skynet.pack(nil))
		return
	end
	records[name] = nil
	skynet.ret(skynet.pack(r.address))
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, cmd, ...)
		provider[cmd](...)
	end)

	-- debug INFO: one entry per record, keyed by the cell address
	skynet.info_func(function()
		local info = {}
		for name, r in pairs(records) do
			local status
			if r.booting then
				status = "booting"
			elseif r.queue then
				status = "waiting(" .. #r.queue .. ")"
			end
			info[skynet.address(r.address)] = {
				init = r.init,
				name = name,
				time = os.date("%Y %b %d %T %z", math.floor(r.time)),
				status = status,
			}
		end
		return info
	end)
end)
