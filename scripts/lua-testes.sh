#!/usr/bin/env bash
# Runs Lua 5.5's own test suite (testes/all.lua from github.com/lua/lua) on
# our patched Lua (vendor/lua-src/lua-5.5.1), built with gcc as a plain
# stand-alone interpreter (scripts/lua-testes/driver.c), with _U=true (the
# "user" tests: no internal T library, _soft and _port). A by-hand tool: CI
# cannot fetch the suite, it runs node/tests/lua_vm.rs instead.
#
# usage: scripts/lua-testes.sh TESTES_DIR [--node]
#   TESTES_DIR  a checkout's testes/ folder (the commit closest to 5.5.1;
#               see README.md, "Lua's test suite")
#   --node      also run it inside a skynet-node service with the code
#               cache on (scripts/lua-testes/service.lua); needs
#               `cargo build --bin skynet-node` (CARGO_TARGET_DIR honoured)
# Fails unless the suite prints "final OK".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 TESTES_DIR [--node]" >&2; exit 2; }
testes="$(cd "$1" && pwd)" || { echo "lua-testes: no folder $1" >&2; exit 2; }
[ -f "$testes/all.lua" ] || { echo "lua-testes: $testes has no all.lua" >&2; exit 2; }
node=0
[ "${2:-}" = "--node" ] && node=1
src="$root/vendor/lua-src/lua-5.5.1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The interpreter: every C file of the vendored Lua plus the driver.
gcc -std=gnu99 -O2 -Wall -DLUA_USE_LINUX -I"$src" -o "$work/lua" \
    "$src"/*.c "$root/scripts/lua-testes/driver.c" -lm -ldl
check() { # LABEL LOG KEPT-AS
    if grep -q "final OK" "$2"; then
        echo "lua-testes: $1: final OK"
    else
        tail -n 30 "$2" >&2
        echo "lua-testes: $1: FAILED (no \"final OK\"; log $3)" >&2
        return 1
    fi
}
log="$work/plain.log"
(cd "$testes" && "$work/lua" -e "_U=true" all.lua) >"$log" 2>&1 || true
status=0
check "plain interpreter" "$log" /tmp/lua-testes-plain.log ||
    { cp "$log" /tmp/lua-testes-plain.log; status=1; }

if [ $node = 1 ]; then
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/skynet-node"
    [ -x "$bin" ] || { echo "lua-testes: build skynet-node first ($bin)" >&2; exit 2; }
    cat >"$work/config" <<CONF
thread = 2
harbor = 0
start = "service"
bootstrap = "snlua bootstrap"
luaservice = "$root/scripts/lua-testes/?.lua;$root/service/?.lua"
lualoader = "$root/lualib/loader.lua"
lua_path = "./?.lua;$root/lualib/?.lua;$root/lualib/?/init.lua"
lua_cpath = ""
CONF
    log="$work/node.log"
    (cd "$testes" && timeout 300 "$bin" "$work/config") >"$log" 2>&1 || true
    check "skynet-node service, code cache on" "$log" /tmp/lua-testes-node.log ||
        { cp "$log" /tmp/lua-testes-node.log; status=1; }
fi
exit $status
