-- Module used by t_shared: its constant strings become shared once it is cached.
local M = { zz_shared_key_42 = 1, plain = "plain value" }
function M.lookup(t, k)
	return t[k]
end
function M.make()
	return { zz_shared_key_42 = 2, [("zz_shared" .. "_key_" .. 42)] = 3 }
end
return M
