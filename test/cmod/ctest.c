/* A C Lua module built by the tests (node/tests/cmodule.rs) against the Lua
   5.5 headers, loaded by a service through lua_cpath: it checks that
   skynet-node exports the Lua C API that such modules link against. */
#include "lua.h"
#include "lauxlib.h"

#include <string.h>

#define COUNTER "ctest.counter"

static int gc_count = 0;

/* add(a, b) -> a + b, checking argument types the auxiliary library's way. */
static int l_add(lua_State *L) {
	lua_Integer a = luaL_checkinteger(L, 1);
	lua_Integer b = luaL_checkinteger(L, 2);
	lua_pushinteger(L, a + b);
	return 1;
}

/* describe(...) -> "n:<count> <type names>" built with a luaL_Buffer. */
static int l_describe(lua_State *L) {
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "n:%d", n);
	luaL_addvalue(&b);
	for (int i = 1; i <= n; i++) {
		luaL_addchar(&b, ' ');
		luaL_addstring(&b, luaL_typename(L, i));
	}
	luaL_pushresult(&b);
	return 1;
}

/* fail(msg): raises an error with the caller's position. */
static int l_fail(lua_State *L) {
	const char *msg = luaL_checkstring(L, 1);
	return luaL_error(L, "ctest failed: %s", msg);
}

/* map(t, f) -> a new array with f(v) for each v of the array t. */
static int l_map(lua_State *L) {
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_Integer n = luaL_len(L, 1);
	lua_createtable(L, (int)n, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_pushvalue(L, 2);
		lua_geti(L, 1, i);
		lua_call(L, 1, 1);
		lua_seti(L, -2, i);
	}
	return 1;
}

/* counter(start) -> a userdata with :incr() and :get(), counted when collected. */
static int l_counter(lua_State *L) {
	lua_Integer start = luaL_optinteger(L, 1, 0);
	lua_Integer *c = (lua_Integer *)lua_newuserdatauv(L, sizeof(lua_Integer), 0);
	*c = start;
	luaL_setmetatable(L, COUNTER);
	return 1;
}

static int counter_incr(lua_State *L) {
	lua_Integer *c = (lua_Integer *)luaL_checkudata(L, 1, COUNTER);
	*c += 1;
	lua_pushinteger(L, *c);
	return 1;
}

static int counter_get(lua_State *L) {
	lua_Integer *c = (lua_Integer *)luaL_checkudata(L, 1, COUNTER);
	lua_pushinteger(L, *c);
	return 1;
}

static int counter_gc(lua_State *L) {
	(void)L;
	gc_count++;
	return 0;
}

/* collected() -> how many counters the collector freed. */
static int l_collected(lua_State *L) {
	lua_pushinteger(L, gc_count);
	return 1;
}

int luaopen_ctest(lua_State *L) {
	static const luaL_Reg funcs[] = {
		{"add", l_add},
		{"describe", l_describe},
		{"fail", l_fail},
		{"map", l_map},
		{"counter", l_counter},
		{"collected", l_collected},
		{NULL, NULL},
	};
	static const luaL_Reg methods[] = {
		{"incr", counter_incr},
		{"get", counter_get},
		{NULL, NULL},
	};
	luaL_checkversion(L);
	if (luaL_newmetatable(L, COUNTER)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, counter_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	lua_pushstring(L, LUA_VERSION);
	lua_setfield(L, -2, "lua_version");
	return 1;
}
