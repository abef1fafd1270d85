-- snax_plain: a snax service without init or exit functions.
local calls = 0

function response.ping(x)
	calls = calls + 1
	return "pong", x, calls
end
