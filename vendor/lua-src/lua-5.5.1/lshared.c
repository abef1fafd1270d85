/*
** skynet-rs: function prototypes and strings shared by every Lua state of
** the process (written for skynet-rs; not part of Lua).
**
** One state, the code state, loads each cached chunk once. Its prototype
** tree and the strings it uses are then marked shared (see G_SHARED in
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


/*
** Remembers that the C string 'str' gave the string 'ts'. Only a string of
** the shared string table lives for good: a shared table's own strings
** (below) go with the state that made them.
*/
void luaS_cachebyaddr (const char *str, TString *ts) {
  unsigned int i;
  if (ts->tt != LUA_VSHRSTR || !isshared(obj2gco(ts)) ||
      luaS_findshared(getshrstr(ts), cast_sizet(ts->shrlen), ts->hash,
                      shared_seed) != ts)
    return;
  i = addrslot(str);
  __atomic_store_n(&addr_cache[i].ts, ts, __ATOMIC_RELEASE);
  __atomic_store_n(&addr_cache[i].addr, str, __ATOMIC_RELEASE);
}


static void makeshared (GCObject *o) {
  o->marked = cast_byte(bitmask(BLACKBIT) | G_SHARED);
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
    if (isshared(obj2gco(dst)) || dst->asize != 0 || !isdummy(dst))
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



/*
** {======================================================================
** Shared tables (skynet's sharetable)
** =======================================================================
**
** A state builds a table, then lua_sharetable marks it shared with
** everything it reaches: nested tables, strings, and functions without
** upvalues with their prototypes. Other states push it with
** lua_clonetable: no copy is made. The objects stay in the lists of the
** state that built them (its collector is stopped for good) and go when
** that state is closed; the caller keeps that state open while any other
** state may reach them (node/src/snlua/sharetable.rs holds it until every
** state that pushed the table is closed).
**
** Several threads read a shared table at once, so nothing writes to it
** after it is shared:
**  - every change raises "attempt to change a shared table" before it
**    writes (ltable.c luaH_set/luaH_setint/luaH_finishset, lvm.h fast
**    sets, lvm.c luaV_finishset, lapi.c lua_setmetatable);
**  - no collector marks it (it is black) or sweeps it (lgc.c skips it);
**  - caches are filled before the table is shared and then only read: the
**    border hint of '#' (ltable.c luaH_getn), the absent-metamethod bits
**    in 'flags' (ltm.c luaT_gettm) and the hash of a long string.
** A state holding a shared table can meet two short strings with the same
** contents (its own and the builder's): see 'eqshrstr' in lstring.h.
** =======================================================================
*/

#include <stdio.h>
#include <stdlib.h>

#include "lctype.h"
#include "ldebug.h"
#include "ldo.h"
#include "lmem.h"

LUAI_DDEF int luaS_sharedtablesinuse = 0;


/* Short strings 'a' and 'b' (not the same object) with equal contents. */
int luaS_eqshared (TString *a, TString *b) {
  return a->hash == b->hash && a->shrlen == b->shrlen &&
         (isshared(a) || isshared(b)) &&
         memcmp(getshrstr(a), getshrstr(b), cast_sizet(a->shrlen)) == 0;
}


/* A table found while sharing, and where it was found (error paths). */
typedef struct FoundTable {
  Table *t;
  size_t parent;  /* index of the table that holds it; (size_t)-1: root */
  TValue key;  /* its key in that table */
} FoundTable;

typedef struct MarkUndo {
  GCObject *o;
  lu_byte marked;  /* before it was shared */
} MarkUndo;

typedef struct ShareWalk {
  lua_State *L;
  FoundTable *found;  /* tables found, in order; also the work queue */
  size_t nfound, sizefound;
  MarkUndo *undo;  /* every object marked, to undo a failed share */
  size_t nundo, sizeundo;
  const char *what;  /* what could not be shared (NULL if nothing) */
  size_t wherefrom;  /* index of the table holding it */
  TValue wherekey;  /* its key there (or itself when it is a key) */
  int askey;  /* it is a key */
  int nomem;
} ShareWalk;


static int growarray (void **a, size_t *size, size_t n, size_t elem) {
  if (n < *size)
    return 1;
  else {
    size_t newsize = (*size == 0) ? 64 : *size * 2;
    void *na = realloc(*a, newsize * elem);
    if (na == NULL)
      return 0;
    *a = na;
    *size = newsize;
    return 1;
  }
}


static int failed (ShareWalk *w) {
  return w->what != NULL || w->nomem;
}


static void setshared (ShareWalk *w, GCObject *o) {
  if (!growarray(cast(void **, &w->undo), &w->sizeundo, w->nundo,
                 sizeof(MarkUndo))) {
    w->nomem = 1;
    return;
  }
  w->undo[w->nundo].o = o;
  w->undo[w->nundo].marked = o->marked;
  w->nundo++;
  makeshared(o);
}


static void sharestr (ShareWalk *w, TString *ts) {
  if (ts == NULL || isshared(obj2gco(ts)))
    return;
  if (ts->tt == LUA_VLNGSTR)
    luaS_hashlongstr(ts);  /* computed now: a shared object is never written */
  setshared(w, obj2gco(ts));
}


static void sharefunction (ShareWalk *w, Proto *p) {
  int i;
  if (isshared(obj2gco(p)))
    return;
  setshared(w, obj2gco(p));
  sharestr(w, p->source);
  for (i = 0; i < p->sizek; i++) {
    if (ttisstring(&p->k[i]))
      sharestr(w, tsvalue(&p->k[i]));
  }
  for (i = 0; i < p->sizeupvalues; i++)
    sharestr(w, p->upvalues[i].name);
  for (i = 0; i < p->sizelocvars; i++)
    sharestr(w, p->locvars[i].varname);
  for (i = 0; i < p->sizep; i++)  /* depth is bounded by the parser */
    sharefunction(w, p->p[i]);
}


/*
** Fills the caches of 't' that readers would otherwise write: the border
** hint of '#' and the absent-metamethod bits (for when 't' is used as a
** metatable).
*/
static void fillcaches (lua_State *L, Table *t) {
  int e;
  if (t->asize > 0)
    luaH_getn(L, t);
  for (e = 0; e <= TM_EQ; e++) {
    if (!(t->flags & (1u << e)))
      luaT_gettm(t, cast(TMS, e), G(L)->tmname[e]);
  }
}


static void cannot (ShareWalk *w, const char *what, size_t from,
                    const TValue *key, int askey) {
  w->what = what;
  w->wherefrom = from;
  setobj(w->L, &w->wherekey, key);
  w->askey = askey;
}


/*
** Shares value 'v', found in table 'from' under 'key' (or as a key when
** 'askey'). A table is queued; its contents are shared when it is
** visited.
*/
static void sharevalue (ShareWalk *w, const TValue *v, size_t from,
                        const TValue *key, int askey) {
  if (failed(w))
    return;
  switch (ttypetag(v)) {
    case LUA_VSHRSTR: case LUA_VLNGSTR:
      sharestr(w, tsvalue(v));
      break;
    case LUA_VTABLE: {
      Table *t = hvalue(v);
      if (isshared(obj2gco(t)))
        break;
      if (t->metatable != NULL) {
        cannot(w, "a table with a metatable", from, askey ? v : key, askey);
        break;
      }
      if (!growarray(cast(void **, &w->found), &w->sizefound, w->nfound,
                     sizeof(FoundTable))) {
        w->nomem = 1;
        break;
      }
      fillcaches(w->L, t);
      setshared(w, obj2gco(t));
      w->found[w->nfound].t = t;
      w->found[w->nfound].parent = from;
      setobj(w->L, &w->found[w->nfound].key, key);
      w->nfound++;
      break;
    }
    case LUA_VLCL: {
      LClosure *cl = clLvalue(v);
      if (isshared(obj2gco(cl)))
        break;
      if (cl->nupvalues > 0) {
        cannot(w, "a function with upvalues", from, askey ? v : key, askey);
        break;
      }
      setshared(w, obj2gco(cl));
      sharefunction(w, cl->p);
      break;
    }
    case LUA_VCCL:
      cannot(w, "a C function with upvalues", from, askey ? v : key, askey);
      break;
    case LUA_VUSERDATA:
      cannot(w, "a userdata", from, askey ? v : key, askey);
      break;
    case LUA_VTHREAD:
      cannot(w, "a thread", from, askey ? v : key, askey);
      break;
    default:  /* nil, booleans, numbers, light userdata, light C functions */
      break;
  }
}


static void sharecontents (ShareWalk *w, size_t i) {
  Table *t = w->found[i].t;
  unsigned int k, size;
  TValue key, val;
  for (k = 0; k < t->asize && !failed(w); k++) {
    lu_byte tag = *getArrTag(t, k);
    if (!tagisempty(tag)) {
      farr2val(t, k, tag, &val);
      setivalue(&key, cast(lua_Integer, k) + 1);
      sharevalue(w, &val, i, &key, 0);
    }
  }
  if (isdummy(t))
    return;
  size = sizenode(t);
  for (k = 0; k < size && !failed(w); k++) {
    Node *n = gnode(t, k);
    if (!isempty(gval(n))) {
      getnodekey(w->L, &key, n);
      sharevalue(w, &key, i, &key, 1);
      sharevalue(w, gval(n), i, &key, 0);
    }
  }
}


/* Appends to 'buff' (of size 'sz', holding 'len' chars) a path step. */
static size_t pathstep (char *buff, size_t sz, size_t len, const TValue *k) {
  char step[64];
  switch (ttypetag(k)) {
    case LUA_VSHRSTR: case LUA_VLNGSTR: {
      size_t l = tsslen(tsvalue(k));
      const char *s = getstr(tsvalue(k));
      size_t i;
      int ident = (l > 0 && l <= 40 && !lisdigit(cast_uchar(s[0])));
      for (i = 0; i < l && ident; i++)
        ident = lislalnum(cast_uchar(s[i]));
      if (ident)
        snprintf(step, sizeof(step), ".%s", s);
      else
        snprintf(step, sizeof(step), "[\"%.40s%s\"]", s, l > 40 ? "..." : "");
      break;
    }
    case LUA_VNUMINT:
      snprintf(step, sizeof(step), "[" LUA_INTEGER_FMT "]",
               (LUAI_UACINT)ivalue(k));
      break;
    case LUA_VNUMFLT:
      snprintf(step, sizeof(step), "[" LUA_NUMBER_FMT "]",
               (LUAI_UACNUMBER)fltvalue(k));
      break;
    case LUA_VFALSE: case LUA_VTRUE:
      snprintf(step, sizeof(step), "[%s]", ttistrue(k) ? "true" : "false");
      break;
    default:
      snprintf(step, sizeof(step), "[%s]", ttypename(ttype(k)));
      break;
  }
  if (len + strlen(step) + 1 < sz) {
    memcpy(buff + len, step, strlen(step) + 1);
    len += strlen(step);
  }
  return len;
}


#define MAXPATHSTEPS	16

/* Writes into 'buff' where the walk failed, as "root.a[2].b". */
static void failpath (ShareWalk *w, char *buff, size_t sz) {
  const TValue *steps[MAXPATHSTEPS + 1];
  int n = 0, more = 0;
  size_t i = w->wherefrom, len;
  if (!w->askey && w->wherefrom != cast_sizet(-1))
    steps[n++] = &w->wherekey;
  while (i != cast_sizet(-1) && w->found[i].parent != cast_sizet(-1)) {
    if (n == MAXPATHSTEPS) {
      more = 1;
      break;
    }
    steps[n++] = &w->found[i].key;
    i = w->found[i].parent;
  }
  len = cast_sizet(snprintf(buff, sz, "%s", more ? "root..." : "root"));
  while (n > 0)
    len = pathstep(buff, sz, len, steps[--n]);
}


static void endwalk (ShareWalk *w) {
  free(w->found);
  free(w->undo);
  w->found = NULL;
  w->undo = NULL;
}


/*
** Shares the table at 'idx' and everything it reaches (see above).
** Functions with upvalues, C closures, userdata, threads and tables with
** a metatable cannot be shared: then nothing is shared and an error names
** the first one found and where ("... at root.a.b"). Runs a full
** collection (in incremental mode) and stops the collector for good: the
** state must then run nothing more; it is only closed when no other state
** can reach its shared objects. All states that read the table must use
** the shared hash seed.
*/
LUA_API void lua_sharetable (lua_State *L, int idx) {
  global_State *g = G(L);
  ShareWalk w;
  TValue root, nokey;
  size_t i;
  lu_byte gcstp;
  if (lua_type(L, idx) != LUA_TTABLE)
    luaG_runerror(L, "sharetable: a table is expected, got %s",
                  lua_typename(L, lua_type(L, idx)));
  if (!__atomic_load_n(&shared_ready, __ATOMIC_ACQUIRE) ||
      g->seed != shared_seed)
    luaG_runerror(L, "sharetable: the state does not use the shared seed");
  sethvalue(L, &root, cast(Table *, lua_topointer(L, idx)));
  if (isshared(gcvalue(&root)))
    return;  /* already shared */
  gcstp = g->gcstp;
  if (g->gckind != KGC_INC)
    luaC_changemode(L, KGC_INC);
  luaC_fullgc(L, 0);  /* no cycle in progress, no gray object */
  g->gcstp = GCSTPUSR;  /* as lua_gc(L, LUA_GCSTOP) */
  memset(&w, 0, sizeof(w));
  w.L = L;
  setnilvalue(&nokey);
  sharevalue(&w, &root, cast_sizet(-1), &nokey, 0);
  for (i = 0; i < w.nfound && !failed(&w); i++)
    sharecontents(&w, i);
  if (failed(&w)) {
    char path[256];
    size_t k = w.nundo;
    while (k > 0) {  /* unshare */
      k--;
      w.undo[k].o->marked = w.undo[k].marked;
    }
    g->gcstp = gcstp;
    if (w.nomem) {
      endwalk(&w);
      luaM_error(L);
    }
    failpath(&w, path, sizeof(path));
    endwalk(&w);
    luaG_runerror(L, "sharetable: %s cannot be shared (%s %s)", w.what,
                  w.askey ? "a key in" : "at", path);
  }
  endwalk(&w);
}


/*
** Pushes the shared table 't' (from lua_sharetable in another state, kept
** open by the caller). Returns 0 and pushes nothing if 't' is not a shared
** table or this state does not use the shared hash seed.
*/
LUA_API int lua_clonetable (lua_State *L, const void *t) {
  Table *h = cast(Table *, t);
  if (h == NULL || h->tt != LUA_VTABLE || !isshared(obj2gco(h)) ||
      !__atomic_load_n(&shared_ready, __ATOMIC_ACQUIRE) ||
      G(L)->seed != shared_seed)
    return 0;
  if (!luaS_foreignstrings())  /* see 'eqshrstr' */
    __atomic_store_n(&luaS_sharedtablesinuse, 1, __ATOMIC_RELAXED);
  lua_lock(L);
  sethvalue2s(L, L->top.p, h);
  api_incr_top(L);
  lua_unlock(L);
  return 1;
}


/* True if the value at 'idx' is a shared table. */
LUA_API int lua_issharedtable (lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TTABLE &&
         isshared(obj2gco(cast(Table *, lua_topointer(L, idx))));
}


/*
** A hash of every byte of the shared table at 'idx' and of all it
** reaches (headers, array and hash parts, strings, closures and the
** parts of prototypes that a reader could touch), for tests that check
** that reading a shared table writes nothing. 0 if the value is not a
** shared table or memory runs out.
*/
typedef struct PtrSet {
  const void **slot;
  size_t size, count;
} PtrSet;

static int ptrset_add (PtrSet *s, const void *p) {  /* 1 new, 0 old, -1 */
  size_t i;
  if (s->count * 2 >= s->size) {
    PtrSet n;
    n.size = (s->size == 0) ? 256 : s->size * 2;
    n.count = 0;
    n.slot = cast(const void **, calloc(n.size, sizeof(void *)));
    if (n.slot == NULL)
      return -1;
    for (i = 0; i < s->size; i++) {
      if (s->slot[i] != NULL)
        ptrset_add(&n, s->slot[i]);
    }
    free(cast(void *, s->slot));
    *s = n;
  }
  for (i = (point2uint(p) * 2654435761u) & (s->size - 1); s->slot[i] != NULL;
       i = (i + 1) & (s->size - 1)) {
    if (s->slot[i] == p)
      return 0;
  }
  s->slot[i] = p;
  s->count++;
  return 1;
}


#define FNV_PRIME	1099511628211ull

static unsigned long long fnv (unsigned long long h, const void *p, size_t n) {
  const unsigned char *b = cast(const unsigned char *, p);
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ b[i]) * FNV_PRIME;
  return h;
}


typedef struct PrintWalk {
  PtrSet seen;
  const Table **todo;
  size_t ntodo, sizetodo;
  unsigned long long h;
  int nomem;
} PrintWalk;


static int firstvisit (PrintWalk *p, const void *o) {
  int r = ptrset_add(&p->seen, o);
  if (r < 0)
    p->nomem = 1;
  return r > 0;
}


static void printstr (PrintWalk *p, const TString *ts) {
  if (ts == NULL || !firstvisit(p, ts))
    return;
  if (strisshr(ts))
    p->h = fnv(p->h, ts, sizestrshr(cast_sizet(ts->shrlen)));
  else {
    p->h = fnv(p->h, ts, luaS_sizelngstr(0, ts->shrlen));
    p->h = fnv(p->h, ts->contents, ts->u.lnglen);
  }
}


static void printproto (PrintWalk *p, const Proto *f) {
  int i;
  if (!firstvisit(p, f))
    return;
  p->h = fnv(p->h, f, sizeof(Proto));
  p->h = fnv(p->h, f->k, cast_sizet(f->sizek) * sizeof(TValue));
  p->h = fnv(p->h, f->code, cast_sizet(f->sizecode) * sizeof(Instruction));
  printstr(p, f->source);
  for (i = 0; i < f->sizek; i++) {
    if (ttisstring(&f->k[i]))
      printstr(p, tsvalue(&f->k[i]));
  }
  for (i = 0; i < f->sizep; i++)
    printproto(p, f->p[i]);
}


static void printvalue (PrintWalk *p, const TValue *v) {
  switch (ttypetag(v)) {
    case LUA_VSHRSTR: case LUA_VLNGSTR:
      printstr(p, tsvalue(v));
      break;
    case LUA_VTABLE:
      if (firstvisit(p, hvalue(v))) {
        if (!growarray(cast(void **, &p->todo), &p->sizetodo, p->ntodo,
                       sizeof(Table *)))
          p->nomem = 1;
        else
          p->todo[p->ntodo++] = hvalue(v);
      }
      break;
    case LUA_VLCL: {
      const LClosure *cl = clLvalue(v);
      if (firstvisit(p, cl)) {
        p->h = fnv(p->h, cl, sizeLclosure(cl->nupvalues));
        printproto(p, cl->p);
      }
      break;
    }
    default:
      break;
  }
}


LUA_API lua_Unsigned lua_sharedfingerprint (lua_State *L, int idx) {
  PrintWalk p;
  TValue root;
  lua_Unsigned result;
  if (!lua_issharedtable(L, idx))
    return 0;
  memset(&p, 0, sizeof(p));
  p.h = 14695981039346656037ull;
  sethvalue(L, &root, cast(Table *, lua_topointer(L, idx)));
  printvalue(&p, &root);
  while (p.ntodo > 0 && !p.nomem) {
    const Table *t = p.todo[--p.ntodo];
    const void *arr, *hash;
    size_t arrsize, hashsize;
    unsigned int k;
    TValue key, val;
    p.h = fnv(p.h, t, sizeof(Table));
    luaH_memparts(t, &arr, &arrsize, &hash, &hashsize);
    p.h = fnv(p.h, arr, arrsize);
    p.h = fnv(p.h, hash, hashsize);
    for (k = 0; k < t->asize; k++) {
      lu_byte tag = *getArrTag(t, k);
      if (!tagisempty(tag)) {
        farr2val(t, k, tag, &val);
        printvalue(&p, &val);
      }
    }
    if (!isdummy(t)) {
      for (k = 0; k < sizenode(t); k++) {
        const Node *n = gnode(cast(Table *, t), k);
        if (!isempty(gval(n))) {
          getnodekey(L, &key, n);
          printvalue(&p, &key);
          printvalue(&p, gval(n));
        }
      }
    }
  }
  result = p.nomem ? 0 : cast(lua_Unsigned, p.h | 1);
  free(cast(void *, p.seen.slot));
  free(cast(void *, p.todo));
  return result;
}

/* }====================================================================== */
