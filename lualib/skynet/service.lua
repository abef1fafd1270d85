-- skynet.service: process-wide unique services built from a plain Lua function.
--
--   service.new(name, mainfunc, ...)  -> address
--       `mainfunc` must be a function whose only upvalue is _ENV (i.e. it uses
--       nothing from the enclosing scope). Its bytecode is shipped to a fresh
--       `service_cell`, which runs it as that service's main chunk with `...`.
--       Every caller asking for the same name gets the same address.
--   service.query(name)  -> address (waits while the service is booting)
--   service.close(name)  -> true if a running service was killed, else false
--
-- The bookkeeping lives in the unique service `service_provider`.

local skynet = require "skynet"
require "skynet.manager"	-- skynet.kill

local service = {}

local known = {}	-- name -> address, addresses this service already learned
local provider_addr

local function provider()
	if not provider_addr then
		provider_addr = skynet.uniqueservice "service_provider"
	end
	return provider_addr
end

-- The function must be self-contained: exactly one upvalue, named _ENV.
local function assert_portable(f)
	local info = debug.getinfo(f, "u")
	assert(info.nups == 1)
	assert(debug.getupvalue(f, 1) == "_ENV")
end

function service.new(name, mainfunc, ...)
	local p = provider()
	local address, booting = skynet.call(p, "lua", "test", name)
	if not address then
		if booting then
			-- somebody else is launching it right now
			address = skynet.call(p, "lua", "query", name)
		else
			assert_portable(mainfunc)
			address = skynet.call(p, "lua", "launch", name, string.dump(mainfunc), ...)
		end
	end
	known[name] = address
	return address
end

function service.close(name)
	local address = skynet.call(provider(), "lua", "close", name)
	if not address then
		return false
	end
	known[name] = nil
	skynet.kill(address)
	return true
end

function service.query(name)
	local address = known[name]
	if not address then
		address = skynet.call(provider(), "lua", "query", name)
		known[name] = address
	end
	return address
end

return service
