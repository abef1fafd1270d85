-- sproto benchmark: encode+decode and pack+unpack of an addressbook
-- message (a few Persons with phones), through lualib/sproto.lua.
local skynet = require "skynet"
require "skynet.manager"
local sproto = require "sproto"

local SCHEMA = [[
.Person {
	name 0 : string
	id 1 : integer
	email 2 : string
	.PhoneNumber {
		number 0 : string
		type 1 : integer
	}
	phone 3 : *PhoneNumber
}
.AddressBook {
	person 0 : *Person
}
]]

local function report(name, value, unit)
	skynet.error(string.format("BENCH %s %.0f %s", name, value, unit))
end

local function run(n, f)
	f()
	local t0 = skynet.hpc()
	for _ = 1, n do
		f()
	end
	return n / ((skynet.hpc() - t0) / 1e9)
end

skynet.start(function()
	local sp = sproto.parse(SCHEMA)
	local book = { person = {} }
	for i = 1, 4 do
		book.person[i] = {
			name = "person-" .. i,
			id = 10000 + i,
			email = "person" .. i .. "@example.com",
			phone = {
				{ number = "555-0100-" .. i, type = 1 },
				{ number = "555-0199-" .. i, type = 2 },
			},
		}
	end
	local bin = sp:encode("AddressBook", book)
	local packed = sproto.pack(bin)
	local n = 100000
	local encode_decode = run(n, function()
		sp:decode("AddressBook", sp:encode("AddressBook", book))
	end)
	local pack, unpack = sproto.pack, sproto.unpack
	local pack_unpack = run(n, function()
		unpack(pack(bin))
	end)
	report("sproto_message_bytes", #bin, "bytes")
	report("sproto_packed_bytes", #packed, "bytes")
	report("sproto_encode_decode", encode_decode, "ops/s")
	report("sproto_pack_unpack", pack_unpack, "ops/s")
	skynet.abort()
end)
