-- Helper of t_shared. Made with "early", it builds its own copy of a string
-- before any service has loaded t_shared_mod; then, on "check", it loads the
-- module (already cached by then) and checks that lookups by constant and by
-- computed key agree. Collections run in both collector modes meanwhile.
local skynet = require "skynet"
local mode = ...
local private
if mode == "early" then
	private = { key = string.format("%s_%d", "zz_shared_key", 42) }
end

local function churn()
	for i = 1, 3 do
		local junk = {}
		for j = 1, 2000 do junk[j] = { tostring(j), j .. "x" } end
		collectgarbage("collect")
		collectgarbage("step")
	end
end

skynet.start(function()
	skynet.dispatch("lua", function()
		churn()
		collectgarbage("incremental")
		local m = require "t_shared_mod"
		churn()
		collectgarbage("generational")
		local key = private and private.key or string.format("%s_%d", "zz_shared_key", 42)
		local made = m.make()
		local weak = setmetatable({}, { __mode = "k" })
		weak[m] = true
		churn()
		skynet.retpack({
			by_constant = m.zz_shared_key_42,
			by_key = m[key],
			lookup = m.lookup(m, key),
			made = made[key],
			made_constant = made.zz_shared_key_42,
			plain = m.plain,
			weak = weak[m],
		})
	end)
end)
