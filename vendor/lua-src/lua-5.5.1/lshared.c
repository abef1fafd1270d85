/*
** skynet-rs: function prototypes and strings shared by every Lua state of
** the process (written for skynet-rs; not part of Lua).
**
** One state, the code state, loads each cached chunk once. Its prototype
** tree and the strings it uses are then marked shared (see SHAREDBIT in
** lgc.h): permanently black and old, never marked, swept or freed by any
** collector. The code state's own collector is stopped for good, and the
** code state is only used under one lock by its owner.
**
** Short strings are compared by address, so a state must never hold a
** private copy of a shared string's contents. Two rules keep that true:
**  - a state that misses a short string in its own table looks in the
**    shared table before creating one (lstring.c), so it adopts the shared
**    string rather than making a copy;
**  - a state that already made a private copy before that string became
**    shared cannot use a prototype that refers to it: lua_cloneshared
**    refuses, and the caller loads the chunk privately instead.
** Every state must use the code state's hash seed (lua_newstate's seed) so
** that a string's stored hash is valid in all of them.
**
** The shared string table is open-addressed and insert-only: readers (any
** thread) need no lock; inserts happen under the code state's lock.
*/

#define lshared_c
#define LUA_CORE

#include "lprefix.h"

#include <string.h>

#include "lua.h"

#include "lapi.h"
#include "lfunc.h"
#include "lgc.h"
#include "lobject.h"
#include "lstate.h"
#include "lstring.h"
#include "ltable.h"
#include "ltm.h"

#define SHARED_SLOTS	(1u << 18)
/* stop sharing new strings when the table is this full */
#define SHARED_LIMIT	(SHARED_SLOTS / 4 * 3)

static TString *shared_strings[SHARED_SLOTS];
static unsigned int shared_count = 0;
static unsigned int shared_seed = 0;
static int shared_ready = 0;


TString *luaS_findshared (const char *str, size_t l, unsigned int h,
                          unsigned int seed) {
  unsigned int i;
  if (!__atomic_load_n(&shared_ready, __ATOMIC_ACQUIRE) || seed != shared_seed)
    return NULL;
  for (i = h & (SHARED_SLOTS - 1); ; i = (i + 1) & (SHARED_SLOTS - 1)) {
    TString *ts = __atomic_load_n(&shared_strings[i], __ATOMIC_ACQUIRE);
    if (ts == NULL)
      return NULL;
    if (ts->hash == h && cast_uint(ts->shrlen) == l &&
        memcmp(getshrstr(ts), str, l * sizeof(char)) == 0)
      return ts;
  }
}


/*
** Shared strings by the address of a C string. States created one after
** the other ask for the same names (library functions, fields) through
** lua_setfield/lua_getfield with the same string literals; this spares them
** hashing the name and probing the shared table. Slots are overwritten
** freely by any thread: a hit is trusted only after comparing contents, and
** the pointer read is always null or a shared string, which lives forever.
*/
#define ADDR_SLOTS	4096

static struct {
  const char *addr;
  TString *ts;
} addr_cache[ADDR_SLOTS];

static unsigned int addrslot (const char *str) {
  size_t a = (size_t)str;
  return cast_uint((a ^ (a >> 12)) % ADDR_SLOTS);
}


static int privatecopy (stringtable *tb, TString *ts);

/*
** The shared string for the C string 'str' if the address cache knows it and
** this state holds no private copy of it; NULL otherwise.
*/
TString *luaS_findbyaddr (lua_State *L, const char *str) {
  unsigned int i = addrslot(str);
  const char *a = __atomic_load_n(&addr_cache[i].addr, __ATOMIC_ACQUIRE);
  TString *ts = __atomic_load_n(&addr_cache[i].ts, __ATOMIC_ACQUIRE);
  if (a != str || ts == NULL || G(L)->seed != shared_seed)
    return NULL;
  if (strcmp(getshrstr(ts), str) != 0 || privatecopy(&G(L)->strt, ts))
    return NULL;
  return ts;
}


/* Remembers that the C string 'str' gave the string 'ts'. */
void luaS_cachebyaddr (const char *str, TString *ts) {
  unsigned int i;
  if (ts->tt != LUA_VSHRSTR || !isshared(obj2gco(ts)))
    return;
  i = addrslot(str);
  __atomic_store_n(&addr_cache[i].ts, ts, __ATOMIC_RELEASE);
  __atomic_store_n(&addr_cache[i].addr, str, __ATOMIC_RELEASE);
}


static void makeshared (GCObject *o) {
  o->marked = cast_byte(bitmask(BLACKBIT) | bitmask(SHAREDBIT) | G_OLD);
}


/* Shares one string of the code state. Returns 0 if the table is full. */
static int sharestring (TString *ts) {
  unsigned int i;
  if (ts == NULL || isshared(obj2gco(ts)))
    return 1;
  if (ts->tt == LUA_VLNGSTR) {
    luaS_hashlongstr(ts);  /* computed now: a shared object is never written */
    makeshared(obj2gco(ts));
    return 1;
  }
  if (shared_count >= SHARED_LIMIT)
    return 0;
  for (i = ts->hash & (SHARED_SLOTS - 1); shared_strings[i] != NULL;
       i = (i + 1) & (SHARED_SLOTS - 1))
    ;
  makeshared(obj2gco(ts));
  __atomic_store_n(&shared_strings[i], ts, __ATOMIC_RELEASE);
  /* counted once visible: see lua_sharedepoch */
  __atomic_store_n(&shared_count, shared_count + 1, __ATOMIC_RELEASE);
  return 1;
}


/*
** Called once on the code state, after it opened its libraries: shares
** every string it holds (library and metamethod names, reserved words...),
** so states created afterwards use those instead of making their own.
*/
LUA_API int lua_sharestrings (lua_State *L) {
  global_State *g = G(L);
  int i;
  lua_lock(L);
  for (i = 0; i < g->strt.size; i++) {
    TString *ts;
    for (ts = g->strt.hash[i]; ts != NULL; ts = ts->u.hnext) {
      if (!sharestring(ts)) {
        lua_unlock(L);
        return 0;
      }
    }
  }
  shared_seed = g->seed;
  __atomic_store_n(&shared_ready, 1, __ATOMIC_RELEASE);
  lua_unlock(L);
  return 1;
}


static int shareproto (Proto *p) {
  int i;
  if (isshared(obj2gco(p)))
    return 1;
  if (!sharestring(p->source))
    return 0;
  for (i = 0; i < p->sizek; i++) {
    if (ttisstring(&p->k[i]) && !sharestring(tsvalue(&p->k[i])))
      return 0;
  }
  for (i = 0; i < p->sizeupvalues; i++) {
    if (!sharestring(p->upvalues[i].name))
      return 0;
  }
  for (i = 0; i < p->sizelocvars; i++) {
    if (!sharestring(p->locvars[i].varname))
      return 0;
  }
  for (i = 0; i < p->sizep; i++) {
    if (!shareproto(p->p[i]))
      return 0;
  }
  makeshared(obj2gco(p));
  return 1;
}


/*
** Called on the code state: shares the prototype of the Lua function at
** 'idx' (and everything it refers to). Returns its address for
** lua_cloneshared, or NULL if it cannot be shared (then nothing of it may be
** used by other states).
*/
LUA_API const void *lua_shareproto (lua_State *L, int idx) {
  const LClosure *cl;
  if (!__atomic_load_n(&shared_ready, __ATOMIC_ACQUIRE) ||
      lua_type(L, idx) != LUA_TFUNCTION || lua_iscfunction(L, idx))
    return NULL;
  cl = (const LClosure *)lua_topointer(L, idx);
  return shareproto(cl->p) ? cl->p : NULL;
}


/*
** How many short strings are shared so far. A state created after reading
** this number can hold no private copy of those strings (it finds them in
** the shared table whenever it needs one), so a prototype whose strings were
** all shared by then needs no conflict check in that state.
*/
LUA_API unsigned int lua_sharedepoch (void) {
  return __atomic_load_n(&shared_count, __ATOMIC_ACQUIRE);
}


static int privatecopy (stringtable *tb, TString *ts) {
  TString *p;
  if (ts == NULL || ts->tt != LUA_VSHRSTR)
    return 0;
  for (p = tb->hash[lmod(ts->hash, tb->size)]; p != NULL; p = p->u.hnext) {
    if (p->hash == ts->hash && p->shrlen == ts->shrlen &&
        memcmp(getshrstr(p), getshrstr(ts), cast_uint(ts->shrlen)) == 0)
      return 1;
  }
  return 0;
}


/*
** True if state 'L' holds a private copy of a short string used by the
** shared prototype 'p' (then 'L' must not use 'p').
*/
int luaS_sharedconflict (lua_State *L, const Proto *p) {
  stringtable *tb = &G(L)->strt;
  int i;
  if (G(L)->seed != shared_seed)
    return 1;
  for (i = 0; i < p->sizek; i++) {
    if (ttisstring(&p->k[i]) && privatecopy(tb, tsvalue(&p->k[i])))
      return 1;
  }
  for (i = 0; i < p->sizeupvalues; i++) {
    if (privatecopy(tb, p->upvalues[i].name))
      return 1;
  }
  for (i = 0; i < p->sizelocvars; i++) {
    if (privatecopy(tb, p->locvars[i].varname))
      return 1;
  }
  for (i = 0; i < p->sizep; i++) {
    if (luaS_sharedconflict(L, p->p[i]))
      return 1;
  }
  return 0;
}


/*
** Library tables built once in the code state and copied into each new
** state, instead of being filled name by name. A template has no array part
** and no metatable; its keys are shared short strings; its values are light
** C functions, numbers, booleans, shared strings, the template itself (a
** self reference such as _G._G) or one other table named when the template
** is made (such as the string metatable's __index). Copies keep the node
** layout, which is valid because every state uses the shared hash seed.
*/
static int templatevalue (const TValue *v, const Table *self,
                          const Table *other) {
  switch (ttypetag(v)) {
    case LUA_VLCF: case LUA_VNUMINT: case LUA_VNUMFLT:
    case LUA_VFALSE: case LUA_VTRUE:
      return 1;
    case LUA_VSHRSTR: case LUA_VLNGSTR:
      return isshared(gcvalue(v));
    case LUA_VTABLE:
      return hvalue(v) == self || (other != NULL && hvalue(v) == other);
    default:
      return 0;
  }
}


/*
** Called on the code state: checks that the table at 'idx' can be a
** template (see above), 'otheridx' (0 for none) being the one other table
** its values may refer to. Returns the template, or NULL.
*/
LUA_API const void *lua_tabletemplate (lua_State *L, int idx, int otheridx) {
  const Table *t, *other = NULL;
  unsigned int i;
  if (!__atomic_load_n(&shared_ready, __ATOMIC_ACQUIRE) ||
      lua_type(L, idx) != LUA_TTABLE)
    return NULL;
  t = cast(const Table *, lua_topointer(L, idx));
  if (otheridx != 0) {
    if (lua_type(L, otheridx) != LUA_TTABLE)
      return NULL;
    other = cast(const Table *, lua_topointer(L, otheridx));
  }
  if (t->asize != 0 || t->metatable != NULL || isdummy(t))
    return NULL;
  for (i = 0; i < sizenode(t); i++) {
    const Node *n = gnode(cast(Table *, t), i);
    if (isempty(gval(n))) {
      if (!keyisnil(n))  /* a removed entry: keep templates simple */
        return NULL;
    }
    else if (keytt(n) != ctb(LUA_VSHRSTR) || !isshared(gckey(n)) ||
             !templatevalue(gval(n), t, other))
      return NULL;
  }
  return t;
}


/*
** Copies template 'tmpl' (from lua_tabletemplate, with 'other' the table its
** values may refer to) into the empty table at 'into', or into a new table
** pushed on the stack when 'into' is 0. References to the template become
** references to the copy; references to 'other' become the table at
** 'otheridx'. Returns 0 (doing nothing) if this state does not use the
** shared hash seed or 'into' is not empty.
*/
LUA_API int lua_clonetemplate (lua_State *L, const void *tmpl,
                               const void *other, int otheridx, int into) {
  const Table *src = cast(const Table *, tmpl);
  Table *dst = NULL, *repl = NULL;
  unsigned int i, size = sizenode(src);
  if (G(L)->seed != shared_seed)
    return 0;
  if (otheridx != 0) {
    if (lua_type(L, otheridx) != LUA_TTABLE)
      return 0;
    repl = cast(Table *, lua_topointer(L, otheridx));
  }
  if (into != 0) {
    if (lua_type(L, into) != LUA_TTABLE)
      return 0;
    dst = cast(Table *, lua_topointer(L, into));
    if (dst->asize != 0 || !isdummy(dst))
      return 0;
  }
  lua_lock(L);
  if (into == 0) {
    dst = luaH_new(L);
    sethvalue2s(L, L->top.p, dst);
    api_incr_top(L);
  }
  luaH_copyhash(L, dst, src);
  for (i = 0; i < size; i++) {
    TValue *v = gval(gnode(dst, i));
    if (ttistable(v)) {
      Table *t = (hvalue(v) == src) ? dst : repl;
      sethvalue(L, v, t);
      luaC_barrierback(L, obj2gco(dst), v);
    }
  }
  invalidateTMcache(dst);
  if (into == 0)
    luaC_checkGC(L);
  lua_unlock(L);
  return 1;
}
