-- A snax file that defines one response method twice.
function response.twice() end
function response.twice() end
