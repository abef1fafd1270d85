# The type t_sharemap.lua shares between services.
.point {
	x 0 : integer
	y 1 : integer
}

.state {
	name 0 : string
	hp 1 : integer
	pos 2 : point
	tags 3 : *string
	alive 4 : boolean
}
