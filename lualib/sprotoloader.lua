-- sprotoloader: schemas kept in the 16 process-wide slots of sproto.core,
-- so that every service loads a schema without parsing it again.

local parser = require "sprotoparser"
local core = require "sproto.core"
local sproto = require "sproto"

local loader = {}

-- register(filename [, slot]): compiles a .sproto file into a slot (default 0).
function loader.register(filename, slot)
	local f = assert(io.open(filename), "Can't open sproto file " .. tostring(filename))
	local text = f:read "a"
	f:close()
	core.saveproto(assert(core.newproto(parser.parse(text, filename))), slot)
end

-- save(bin [, slot]): puts a compiled schema into a slot.
function loader.save(bin, slot)
	core.saveproto(assert(core.newproto(bin)), slot)
end

-- load([slot]): a sproto object on the schema in the slot.
function loader.load(slot)
	return sproto.sharenew(core.loadproto(slot))
end

return loader
