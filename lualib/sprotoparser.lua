-- sprotoparser: .sproto schema text compiled to the binary schema that
-- sproto.new loads. The compiler is native (sprotoparser.core); a bad schema
-- raises an error naming the line and the problem.

local core = require "sprotoparser.core"

local parser = {}

-- parse(text [, name]): the compiled schema; `name` names the text in errors.
function parser.parse(text, name)
	return core.parse(text, name)
end

-- dump(bin): prints the bytes in hex, 16 a line, a "-" after the 8th.
function parser.dump(bin)
	local line = {}
	for i = 1, #bin do
		line[#line + 1] = string.format("%02X ", bin:byte(i))
		if i % 16 == 0 then
			print(table.concat(line))
			line = {}
		elseif i % 8 == 0 then
			line[#line + 1] = "- "
		end
	end
	print(table.concat(line))
end

return parser
