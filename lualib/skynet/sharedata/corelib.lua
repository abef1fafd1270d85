-- skynet.sharedata.corelib: the layer between skynet.sharedata and the
-- native skynet.sharedata.core.
--
-- host:   what sharedatad uses to make, count and free objects.
-- box:    box(cobj, name) -> a read-only proxy of the object (native:
--         __index/__len/__pairs run in Rust; nested tables are proxies too;
--         writes raise an error).
-- update: update(proxy, cobj) moves the proxy's whole tree to a newer
--         version (proxies remember what they read until then).
-- flush, object, copy, stat: catch up with a staged version (none is left
--         staged by update); the handle the proxy reads now; a plain Lua copy
--         of (a path into) an object; objects alive in the process and bytes.

local core = require "skynet.sharedata.core"

local corelib = {
	host = {
		new = core.new,
		delete = core.delete,
		getref = core.getref,
		markdirty = core.markdirty,
		incref = core.incref,
		decref = core.decref,
	},
	box = core.proxy,
	update = core.proxyupdate,
	flush = core.flush,
	object = core.object,
	copy = core.copy,
	stat = core.stat,
}

return corelib
