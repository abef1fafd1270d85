-- http.url: split a request target into path and query, and decode a query
-- string into a table.
local url = {}

local char, tonumber, type = string.char, tonumber, type

local function unhex(h)
	return char(tonumber(h, 16))
end

-- '+' is a space; %XX is a byte (a '%' not followed by two hex digits stays).
local function decode(s)
	s = s:gsub("+", " ")
	return (s:gsub("%%(%x%x)", unhex))
end

url.decode = decode

-- parse(u) -> decoded path, raw query ("" when there is no '?').
function url.parse(u)
	local path, query = u:match "^([^?]*)%??(.*)$"
	return decode(path), query
end

-- parse_query(q) -> { name = value }; a name given more than once maps to a
-- list of its values in order; "name" alone gives "".
function url.parse_query(q)
	local r = {}
	for pair in q:gmatch "[^&]+" do
		local k, v = pair:match "^([^=]*)=(.*)$"
		if not k then
			k, v = pair, ""
		end
		k, v = decode(k), decode(v)
		local old = r[k]
		if old == nil then
			r[k] = v
		elseif type(old) == "table" then
			old[#old + 1] = v
		else
			r[k] = { old, v }
		end
	end
	return r
end

return url
