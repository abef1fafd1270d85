-- A snax file with a method that is not a function.
accept.broken = 42
