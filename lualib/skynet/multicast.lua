-- skynet.multicast: channels that carry one published message to every
-- subscriber, through the node's multicastd service (service/multicastd.lua).
--
--   local c = multicast.new { channel = id, pack = f, unpack = f, dispatch = f }
--       every field is optional: without `channel` a new channel is made (its
--       id, c.channel, can be given to services on any harbor); pack/unpack
--       default to skynet.pack/skynet.unpack; dispatch(c, source, ...) runs
--       for each message while c is subscribed.
--   c:publish(...)     sends to every subscriber of the channel; each sees
--                      the messages of one publisher in publish order, with
--                      the publisher as source
--   c:subscribe()      starts deliveries to this service (one channel object
--                      per channel and service)
--   c:unsubscribe()    stops them (also when c is collected)
--   c:delete()         removes the channel for everyone
--
-- The payload is packed once and shared: each subscriber gets an 8-byte
-- message naming the package (skynet.multicast.core), reads the payload in
-- place and gives its reference back after its dispatch returns.

local skynet = require "skynet"
local mc = require "skynet.multicast.core"

local multicastd
local subscribed = {}	-- channel id -> the subscribed channel object

local channel = {}
local channel_meta = {
	__index = channel,
	__gc = function(self)
		self:unsubscribe()
	end,
	__tostring = function(self)
		if self.channel == nil then
			return "[Multicast:deleted]"
		end
		return string.format("[Multicast:%x]", self.channel)
	end,
}

local multicast = {}

function multicast.new(conf)
	if multicastd == nil then
		error("skynet.multicast: not initialised (require it before skynet.start)", 2)
	end
	conf = conf or {}
	local self = {
		channel = conf.channel,
		__pack = conf.pack or skynet.pack,
		__unpack = conf.unpack or skynet.unpack,
		__dispatch = conf.dispatch,
	}
	if self.channel == nil then
		self.channel = skynet.call(multicastd, "lua", "NEW")
	end
	return setmetatable(self, channel_meta)
end

-- The id of the channel object `self`; an error once it was deleted.
local function live_channel_id(self)
	local c = self.channel
	if c == nil then
		error("skynet.multicast: the channel was deleted", 3)
	end
	return c
end

function channel:publish(...)
	local c = live_channel_id(self)
	local holder, sz = mc.pack(self.__pack(...))
	local ok, published, err = pcall(skynet.call, multicastd, "lua", "PUB", c, holder, sz)
	if not ok then
		-- multicastd never took the package: free it here
		pcall(function() skynet.trash(mc.remote(holder, sz)) end)
		error(published, 2)
	end
	if not published then
		error(err, 2)
	end
end

function channel:subscribe()
	local c = live_channel_id(self)
	if self.__subscribe then
		return
	end
	local ok, err = skynet.call(multicastd, "lua", "SUB", c)
	if not ok then
		error(err, 2)
	end
	self.__subscribe = true
	subscribed[c] = self
end

function channel:unsubscribe()
	if not self.__subscribe then
		return
	end
	local c = self.channel
	self.__subscribe = nil
	if subscribed[c] == self then
		subscribed[c] = nil
	end
	skynet.send(multicastd, "lua", "USUB", c)
end

function channel:delete()
	local c = live_channel_id(self)
	if subscribed[c] == self then
		subscribed[c] = nil
	end
	self.__subscribe = nil
	self.channel = nil
	skynet.send(multicastd, "lua", "DEL", c)
end

local function run_dispatch(self, source, msg, sz)
	return self.__dispatch(self, source, self.__unpack(msg, sz))
end

-- A delivery: the session is the channel id, the source the publisher.
local function deliver(c, source, pkg, msg, sz)
	skynet.ignoreret()
	local self = subscribed[c]
	if self == nil or not self.__subscribe then
		-- unsubscribed while the message was on its way
		mc.close(pkg)
		return
	end
	local ok, err = pcall(run_dispatch, self, source, msg, sz)
	mc.close(pkg)
	if not ok then
		error(err, 0)
	end
end

skynet.init(function()
	multicastd = skynet.uniqueservice "multicastd"
	skynet.register_protocol {
		name = "multicast",
		id = skynet.PTYPE_MULTICAST,
		unpack = mc.unpack,
		dispatch = deliver,
	}
end)

return multicast
