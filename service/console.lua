-- console: reads commands from the process's standard input, one per line.
--   snax <name> [args...]   start a snax service (snax.newservice)
--   <name> [args...]        start a Lua service (skynet.newservice)
-- Empty lines are ignored; launch failures are swallowed (the launched
-- service logs its own error).

local skynet = require "skynet"
local socket = require "skynet.socket"

local function words(line)
	local list = {}
	for w in string.gmatch(line, "%S+") do
		list[#list + 1] = w
	end
	return list
end

-- skynet.snax is loaded on first use only
local function start_snax(...)
	local snax = require "skynet.snax"
	return snax.newservice(...)
end

local function read_commands()
	local stdin = socket.stdin()
	while true do
		local line = socket.readline(stdin, "\n")
		local argv = words(line)
		if argv[1] == "snax" then
			pcall(start_snax, table.unpack(argv, 2))
		elseif line ~= "" then
			pcall(skynet.newservice, line)
		end
	end
end

skynet.start(function()
	skynet.fork(read_commands)
end)
