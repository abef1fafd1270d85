-- A snax file whose init is not a function.
init = "soon"
