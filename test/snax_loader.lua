-- The config `snax_loader` of t_snax: snaxd dofiles this file and loads
-- snax files with the function it returns, instead of searching `snax`.
local skynet = require "skynet"

return function(path, name, G)
	local folder = assert(string.match(path, "^(.*/)%?%.lua$"), path)
	skynet.error("snax_loader:", name)
	return assert(loadfile(folder .. name .. ".lua", "bt", G)), folder .. "?.lua"
end
