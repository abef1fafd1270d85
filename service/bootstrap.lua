-- bootstrap: the first Lua service. It brings up the system services in a
-- fixed order and then retires:
--
--   1. .launcher   (snlua launcher)
--   2. .cslave     harbor 0: the Lua `cdummy` service (it starts the harbor)
--                  harbor N: `cmaster` first when this node is the master
--                  (config `standalone` set), then the native `cslave`
--   3. DATACENTER  (datacenterd) on the standalone / master node, or, with a
--                  separate skynet-master, on the node whose config says
--                  global_services = true; when no key is set, on the first
--                  harbor to join (`.cslave` ELECTED: its `W` was `W 0`)
--   4. service_mgr (.service, and SERVICE on that same node)
--   5. ltls_holder when enablessl == "true"
--   6. the start service (config `start`, default "main")
--
-- Failing to bring up step 2 aborts the whole process.

local skynet = require "skynet"
local service = require "skynet.service"
require "skynet.manager"	-- launch, name, abort

-- Brings up `.cslave` for a single-node process (harbor id 0).
local function start_single_node(standalone)
	assert(standalone == nil)
	skynet.setenv("standalone", "true")
	local ok, slave = pcall(skynet.newservice, "cdummy")
	if not ok or not slave then
		return false
	end
	skynet.name(".cslave", slave)
	return true
end

-- Brings up the master (when configured) and `.cslave` for a multi-node
-- network. Both are native modules of this runtime; cslave reads the
-- `master` / `address` / `harbor` settings from the environment itself.
local function start_harbor_node(standalone)
	if standalone then
		if not skynet.launch("cmaster", standalone) then
			return false
		end
	end
	local slave = skynet.launch("cslave")
	if not slave then
		return false
	end
	skynet.name(".cslave", slave)
	return true
end

skynet.start(function()
	local standalone = skynet.getenv "standalone"

	local launcher = assert(skynet.launch("snlua", "launcher"))
	skynet.name(".launcher", launcher)

	local harbor_id = tonumber(skynet.getenv "harbor" or 0)
	local ready
	if harbor_id == 0 then
		ready = start_single_node(standalone)
		standalone = true
	else
		ready = start_harbor_node(standalone)
		local key = skynet.getenv "global_services"
		local host = key == "true"
		if ready and not standalone and key == nil then
			-- No layout given: the master's answer to our handshake elects
			-- the first harbor to join (this waits for the master).
			host = skynet.call(".cslave", "lua", "ELECTED")
		end
		if ready and not standalone and host then
			-- No master in this process, but this node hosts the network-wide
			-- services; service_mgr decides by `standalone`.
			skynet.setenv("standalone", "true")
			standalone = true
		end
	end
	if not ready then
		skynet.abort()
		return
	end

	if standalone then
		local datacenter = skynet.newservice "datacenterd"
		skynet.name("DATACENTER", datacenter)
	end
	skynet.newservice "service_mgr"

	if skynet.getenv "enablessl" == "true" then
		-- a unique holder service that initialises the TLS library once
		service.new("ltls_holder", function()
			local tls = require "ltls.init.c"
			tls.constructor()
		end)
	end

	pcall(skynet.newservice, skynet.getenv "start" or "main")
	skynet.exit()
end)
