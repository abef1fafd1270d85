-- A module for t_require: the other half of the cycle (see t_require_cyc).
return { other = require "t_require_cyc" }
