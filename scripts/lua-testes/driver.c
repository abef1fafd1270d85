/*
** A minimal stand-alone Lua for running Lua's test suite (testes/all.lua)
** on our patched Lua (vendor/lua-src). Written for skynet-rs; it does what
** the suite needs of Lua's own interpreter: the standard libraries (and
** the T library when built with LUA_USER_H="ltests.h", whose
** luai_openlibs opens it), warnings off, the global 'arg', the collector
** in generational mode, '-e' chunks run before the script.
**
** usage: driver [-e chunk]... script [args]
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#if !defined(luai_openlibs)
#define luai_openlibs(L)	luaL_openlibs(L)
#endif


static int traceback (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}


/* Runs the function on the top with a traceback handler; 0 if it failed. */
static int docall (lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  int status;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, 0, base);
  lua_remove(L, base);
  if (status != LUA_OK) {
    fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}


static int pmain (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i, script = 0, n;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-e") == 0 && i + 1 < argc)
      i++;
    else {
      script = i;
      break;
    }
  }
  if (script == 0)
    return luaL_error(L, "usage: %s [-e chunk]... script [args]", argv[0]);
  luai_openlibs(L);
  lua_warning(L, "@off", 0);  /* as Lua's stand-alone interpreter */
  /* arg[0] is the script, arg[-k] what precedes it, arg[k] its arguments */
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN);
  for (i = 1; i < script; i += 2) {
    if (luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]), "=(command line)")
        != LUA_OK) {
      fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
      lua_pushboolean(L, 0);
      return 1;
    }
    if (!docall(L, 0)) {
      lua_pushboolean(L, 0);
      return 1;
    }
  }
  if (luaL_loadfile(L, argv[script]) != LUA_OK) {
    fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
    lua_pushboolean(L, 0);
    return 1;
  }
  n = argc - script - 1;
  luaL_checkstack(L, n, "too many arguments");
  for (i = script + 1; i < argc; i++)
    lua_pushstring(L, argv[i]);
  lua_pushboolean(L, docall(L, n));
  return 1;
}


int main (int argc, char **argv) {
  int ok;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "driver: cannot create state: not enough memory\n");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);  /* no collection while the state is built */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  ok = lua_pcall(L, 2, 1, 0) == LUA_OK && lua_toboolean(L, -1);
  if (!ok && lua_type(L, -1) == LUA_TSTRING)
    fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
