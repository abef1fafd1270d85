-- A module found in snax_counter's own folder.
return {
	greeting = function()
		return "helper here"
	end,
}
