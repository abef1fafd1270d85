-- debug_console [ip] port: skynet's debug console, a line protocol over TCP
-- (telnet, nc) with skynet's commands (type `help`). Each command's output
-- is tab-separated lines ending with "<CMD OK>", or the reason and
-- "<CMD Error>". Also HTTP: `GET /cmd/arg/...` runs "cmd arg ..." (each path
-- piece %XX-decoded) and `POST` runs the body; as in skynet the answer is the
-- console's text with no HTTP header (curl needs --http0.9), then the
-- connection closes.
--
-- An address is ".name", ":hex" or bare hex (this node's harbor added).

local skynet = require "skynet"
local core = require "skynet.core"
local socket = require "skynet.socket"
local codecache = require "skynet.codecache"
local memory = require "skynet.memory"
local httpd = require "http.httpd"
local sockethelper = require "http.sockethelper"

local args = table.pack(...)
assert(args.n >= 1 and args.n <= 2, "usage: debug_console [ip] port")
local listen_ip = args.n == 2 and args[1] or "127.0.0.1"
local listen_port = assert(tonumber(args[args.n]), "debug_console: port must be a number")
local TIMEOUT = 300	-- cs, for stat, mem and gc

local COMMAND = {}	-- name -> f(args...)
local COMMANDX = {}	-- name -> f({ cmdline, args..., fd = socket })

-- Raises `msg` as the command's error (no position: it is shown to the user).
local function fail(msg, ...)
	error(string.format(msg, ...), 0)
end

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys, function(a, b)
		return tostring(a) < tostring(b)
	end)
	return keys
end

-- "k:v\tk:v" for a table value, sorted by key
local function format_table(t)
	local out = {}
	for _, k in ipairs(sorted_keys(t)) do
		out[#out + 1] = string.format("%s:%s", k, tostring(t[k]))
	end
	return table.concat(out, "\t")
end

local function dump_list(print, list)
	for _, k in ipairs(sorted_keys(list)) do
		local v = list[k]
		if type(v) == "table" then
			print(k, format_table(v))
		else
			print(k, tostring(v))
		end
	end
end

local function words(line)
	local list = {}
	for w in line:gmatch("%S+") do
		list[#list + 1] = w
	end
	return list
end

local function docmd(cmdline, print, fd)
	local argv = words(cmdline)
	local name = argv[1]
	local ok, result
	if COMMAND[name] then
		ok, result = pcall(COMMAND[name], table.unpack(argv, 2))
	elseif COMMANDX[name] then
		argv[1] = cmdline
		argv.fd = fd
		ok, result = pcall(COMMANDX[name], argv)
	else
		ok, result = false, "Invalid command, type help for command list"
	end
	if ok then
		if type(result) == "table" then
			dump_list(print, result)
		elseif result ~= nil then
			print(result)
		end
		print("<CMD OK>")
	else
		print(tostring(result))
		print("<CMD Error>")
	end
end

local function unescape(s)
	return (s:gsub("%%(%x%x)", function(h)
		return string.char(tonumber(h, 16))
	end))
end

-- The command line of an HTTP request whose first line is `first`, or nil
-- and the reason.
local function http_command(fd, first)
	local code, url, method, _, body = httpd.read_request(sockethelper.readfunc(fd, first .. "\n"), 8192)
	if code ~= 200 then
		return nil, "bad HTTP request: " .. tostring(url or code)
	end
	if method == "POST" then
		return body or ""
	end
	local path = url:match("^[^?#]*"):sub(2)
	local parts = {}
	for piece in path:gmatch("[^/]+") do
		parts[#parts + 1] = unescape(piece)
	end
	return table.concat(parts, " ")
end

local function serve(fd, addr)
	local function print(...)
		local t = table.pack(...)
		for i = 1, t.n do
			t[i] = tostring(t[i])
		end
		socket.write(fd, table.concat(t, "\t", 1, t.n) .. "\n")
	end
	socket.start(fd)
	print("Welcome to skynet console")
	skynet.error(addr, "connected")
	local ok, err = pcall(function()
		while true do
			local line = socket.readline(fd, "\n")
			if not line then
				break
			end
			if line:sub(1, 4) == "GET " or line:sub(1, 5) == "POST " then
				local cmdline, why = http_command(fd, line)
				if cmdline then
					docmd(cmdline, print, fd)
				else
					print(why)
					print("<CMD Error>")
				end
				break
			end
			line = line:gsub("\r$", "")	-- telnet sends \r\n
			if line:find("%S") then
				docmd(line, print, fd)
			end
		end
	end)
	if not ok then
		skynet.error(fd, err)
	end
	skynet.error(addr, "disconnect")
	socket.close(fd)
end

skynet.start(function()
	local id, ip, port = socket.listen(listen_ip, listen_port)
	skynet.error("Start debug console at " .. ip .. ":" .. port)
	socket.start(id, function(fd, addr)
		skynet.fork(serve, fd, addr)
	end)
end)

---------------------------------------------------------------- arguments

-- A service address from ".name", ":hex" or "hex".
local function address_of(s, cmd)
	if s == nil then
		fail("%s: need an address (.name, :hex or hex)", cmd)
	end
	local first = s:sub(1, 1)
	if first == "." then
		return skynet.localname(s) or fail("%s: no service named %s", cmd, s)
	end
	local hex = first == ":" and s:sub(2) or s
	local n = hex:match("^%x+$") and tonumber(hex, 16)
	if not n or n > 0xffffffff then
		fail("%s: %s is not an address (.name, :hex or hex)", cmd, s)
	end
	if first ~= ":" then
		n = n | (skynet.harbor(skynet.self()) << 24)
	end
	return n
end

-- The timeout of stat, mem and gc: cs, <= 0 for none, 3 s if not given.
local function timeout_of(ti, cmd)
	if ti == nil then
		return TIMEOUT
	end
	local n = tonumber(ti) or fail("%s: the timeout %s is not a number", cmd, ti)
	if n <= 0 then
		return nil
	end
	return n
end

local function need(value, cmd, what)
	if value == nil then
		fail("%s: need %s", cmd, what)
	end
	return value
end

local function on_off(s, cmd)
	if s == "on" or s == "true" then
		return true
	elseif s == "off" or s == "false" then
		return false
	end
	fail("%s: %s is not on or off", cmd, s)
end

---------------------------------------------------------------- commands

function COMMAND.help()
	return {
		help = "This help message",
		list = "List all the service",
		stat = "stat [timeout] : dump all stats",
		info = "info address : get service infomation",
		exit = "exit address : kill a lua service",
		kill = "kill address : kill service",
		mem = "mem [timeout] : show memory status",
		gc = "gc [timeout] : force every lua service do garbage collect",
		start = "start name args... : lanuch a new lua service",
		snax = "snax name args... : lanuch a new snax service",
		clearcache = "clear lua code cache",
		service = "List unique service",
		task = "task address : show service task detail",
		uniqtask = "uniqtask address : show service unique task detail",
		inject = "inject address luascript.lua",
		logon = "logon address",
		logoff = "logoff address",
		log = "log name args... : launch a new lua service with log",
		debug = "debug address : not available on this node (no debug_agent)",
		signal = "signal address [sig]",
		cmem = "Show C memory info",
		jmem = "Show jemalloc mem stats",
		ping = "ping address",
		call = "call address ...",
		trace = "trace address [proto] [on|off]",
		netstat = "netstat : show netstat",
		profactive = "profactive [on|off] : active/deactive jemalloc heap profilling",
		dumpheap = "dumpheap : dump heap profilling",
		killtask = "killtask address threadname : threadname listed by task",
		dbgcmd = "dbgcmd address cmd ... : run address debug command",
		getenv = "getenv name : skynet.getenv(name)",
		setenv = "setenv name value : skynet.setenv(name,value)",
	}
end

function COMMAND.clearcache()
	codecache.clear()
end

-- { [address] = name } of a service just started by `launch`
local function started(cmd, launch, name, ...)
	need(name, cmd, "a service name")
	local ok, addr = pcall(launch, name, ...)
	if not ok then
		fail("%s: %s failed: %s", cmd, name, tostring(addr))
	end
	if not addr then
		return "Exit"	-- it ended during its start
	end
	return { [skynet.address(addr)] = name }
end

function COMMAND.start(...)
	return started("start", skynet.newservice, ...)
end

function COMMAND.log(...)
	return started("log", function(...)
		return skynet.call(".launcher", "lua", "LOGLAUNCH", "snlua", ...)
	end, ...)
end

function COMMAND.snax(...)
	local snax = require "skynet.snax"
	return started("snax", function(...)
		return snax.newservice(...).handle
	end, ...)
end

function COMMAND.service()
	return skynet.call("SERVICE", "lua", "LIST")
end

function COMMAND.list()
	return skynet.call(".launcher", "lua", "LIST")
end

function COMMAND.stat(ti)
	return skynet.call(".launcher", "lua", "STAT", timeout_of(ti, "stat"))
end

function COMMAND.mem(ti)
	return skynet.call(".launcher", "lua", "MEM", timeout_of(ti, "mem"))
end

function COMMAND.gc(ti)
	return skynet.call(".launcher", "lua", "GC", timeout_of(ti, "gc"))
end

function COMMAND.kill(address)
	return skynet.call(".launcher", "lua", "KILL", address_of(address, "kill"))
end

function COMMAND.exit(address)
	skynet.send(address_of(address, "exit"), "debug", "EXIT")
end

function COMMAND.inject(address, filename, ...)
	address = address_of(address, "inject")
	need(filename, "inject", "a Lua file")
	local f, err = io.open(filename, "rb")
	if not f then
		fail("inject: can't open %s: %s", filename, err)
	end
	local source = f:read "a"
	f:close()
	local ok, output = skynet.call(address, "debug", "RUN", source, filename, ...)
	if ok == false then
		error(output, 0)
	end
	return output
end

function COMMAND.dbgcmd(address, cmd, ...)
	address = address_of(address, "dbgcmd")
	need(cmd, "dbgcmd", "a debug command")
	return skynet.call(address, "debug", cmd, ...)
end

function COMMAND.task(address)
	return skynet.call(address_of(address, "task"), "debug", "TASK")
end

function COMMAND.uniqtask(address)
	return skynet.call(address_of(address, "uniqtask"), "debug", "UNIQTASK")
end

-- The thread name as `task` lists it ("thread: 0x..."), spaces and all.
function COMMAND.killtask(address, ...)
	address = address_of(address, "killtask")
	local name = need(... and table.concat({ ... }, " "), "killtask", "a thread name (see task)")
	return skynet.call(address, "debug", "KILLTASK", name)
end

function COMMAND.info(address, ...)
	return skynet.call(address_of(address, "info"), "debug", "INFO", ...)
end

function COMMAND.debug()
	fail("debug: not available on this node (it needs debug_agent and skynet.remotedebug)")
end

function COMMAND.logon(address)
	core.command("LOGON", skynet.address(address_of(address, "logon")))
end

function COMMAND.logoff(address)
	core.command("LOGOFF", skynet.address(address_of(address, "logoff")))
end

function COMMAND.signal(address, sig)
	address = skynet.address(address_of(address, "signal"))
	if sig then
		local n = math.tointeger(tonumber(sig)) or fail("signal: %s is not a signal number", sig)
		core.command("SIGNAL", string.format("%s %d", address, n))
	else
		core.command("SIGNAL", address)
	end
end

function COMMAND.cmem()
	local out = {}
	for handle, bytes in pairs(memory.info()) do
		out[skynet.address(handle)] = bytes
	end
	out.total = memory.total()
	out.block = memory.block()
	return out
end

function COMMAND.jmem()
	local out = {}
	for k, v in pairs(memory.jestat()) do
		out[k] = string.format("%11d  %8.2f Mb", v, v / 1048576)
	end
	return out
end

function COMMAND.ping(address)
	address = address_of(address, "ping")
	local t0 = skynet.now()
	skynet.call(address, "debug", "PING")
	return tostring(skynet.now() - t0)
end

function COMMAND.trace(address, proto, flag)
	address = address_of(address, "trace")
	if flag ~= nil then
		flag = on_off(flag, "trace")
	elseif proto == "on" or proto == "off" then
		proto = on_off(proto, "trace")
	end
	skynet.call(address, "debug", "TRACELOG", proto, flag)
end

-- call address args... : the arguments are Lua expressions (constants only)
function COMMANDX.call(cmd)
	local address = address_of(cmd[2], "call")
	local rest = cmd[1]:match("^%s*%S+%s+%S+%s+(.-)%s*$")
	if not rest or rest == "" then
		fail("call: need arguments (Lua values, as in call :8 \"cmd\", 1)")
	end
	local f, err = load("return " .. rest, "=(debug console)", "t", {})
	if not f then
		fail("call: bad arguments: %s", err)
	end
	local argv = table.pack(pcall(f))
	if not argv[1] then
		fail("call: bad arguments: %s", tostring(argv[2]))
	end
	return table.pack(skynet.call(address, "lua", table.unpack(argv, 2, argv.n)))
end

local function bytes(size)
	if size == nil or size == 0 then
		return nil
	end
	if size < 1024 then
		return size
	end
	if size < 1024 * 1024 then
		return tostring(size / 1024) .. "K"
	end
	return tostring(size / (1024 * 1024)) .. "M"
end

-- socket.netstat's figures made readable: sizes in K/M, times as ages
local function readable(info)
	local now = skynet.now()
	local function age(t)
		if t == nil then
			return nil
		end
		t = now - t
		if t < 6000 then
			return tostring(t / 100) .. "s"
		end
		local hour = t // (100 * 60 * 60)
		t = t - hour * 100 * 60 * 60
		local min = t // (100 * 60)
		t = t - min * 100 * 60
		return string.format("%s%d:%.2gs", hour == 0 and "" or (hour .. ":"), min, t / 100)
	end
	info.address = skynet.address(info.address)
	info.read = bytes(info.read)
	info.write = bytes(info.write)
	info.wbuffer = bytes(info.wbuffer)
	info.rtime = age(info.rtime)
	info.wtime = age(info.wtime)
end

function COMMAND.netstat()
	local stat = socket.netstat()
	for _, info in ipairs(stat) do
		readable(info)
	end
	return stat
end

function COMMAND.dumpheap()
	memory.dumpheap()
end

function COMMAND.profactive(flag)
	if flag ~= nil then
		memory.profactive(on_off(flag, "profactive"))
	end
	return "heap profilling is " .. (memory.profactive() and "active" or "deactive")
end

function COMMAND.getenv(name)
	need(name, "getenv", "a name")
	return { [name] = tostring(skynet.getenv(name)) }
end

function COMMAND.setenv(name, value)
	need(name, "setenv", "a name")
	need(value, "setenv", "a value")
	skynet.setenv(name, value)
end
