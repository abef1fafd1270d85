-- Helper of t_sproto: reads sprotoloader slots written by another service,
-- and dispatches sproto packets handed over as message pointers.
local skynet = require "skynet"
local loader = require "sprotoloader"

local got = {}
local host

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	unpack = function(msg, sz)
		return host:dispatch(msg, sz)
	end,
	dispatch = function(_, _, kind, name, args, resp, ud)
		got[#got + 1] = string.format("%s %s %s %s %s", kind, name, args.id or args.msg, type(resp), tostring(ud))
	end,
}

skynet.start(function()
	host = loader.load(1):host "package"
	skynet.dispatch("lua", function(_, _, cmd, slot)
		if cmd == "load" then
			local sp = loader.load(slot)
			if sp:exist_type "Person" then
				skynet.ret(skynet.pack(require("sproto_cases").hex(sp:encode("Person", { name = "n", id = slot }))))
			else
				skynet.ret(skynet.pack("types: " .. tostring(sp:exist_type "Other")))
			end
		elseif cmd == "got" then
			skynet.ret(skynet.pack(table.concat(got, "; ")))
		end
	end)
end)
