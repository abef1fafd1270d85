-- Data for t_sharetable's loadfile: a table built from the loader's
-- arguments. (Loaded by skynet.sharetable, never run as a service.)
local scale, label = ...
local t = { label = label, values = {}, lookup = {} }
for i = 1, 10 do
	t.values[i] = i * scale
	t.lookup["v" .. i] = t.values[i]
end
t.sum = function(list)
	local s = 0
	for i = 1, #list do s = s + list[i] end
	return s
end
return t
