/*
** $Id: lstring.h $
** String table (keep all strings handled by Lua)
** See Copyright Notice in lua.h
*/

#ifndef lstring_h
#define lstring_h

#include "lgc.h"
#include "lobject.h"
#include "lstate.h"


/*
** Memory-allocation error message must be preallocated (it cannot
** be created after memory is exhausted)
*/
#define MEMERRMSG       "not enough memory"


/*
** Maximum length for short strings, that is, strings that are
** internalized. (Cannot be smaller than reserved words or tags for
** metamethods, as these strings must be internalized;
** #("function") = 8, #("__newindex") = 10.)
*/
#if !defined(LUAI_MAXSHORTLEN)
#define LUAI_MAXSHORTLEN	40
#endif


/*
** Size of a short TString: Size of the header plus space for the string
** itself (including final '\0').
*/
#define sizestrshr(l)  \
	(offsetof(TString, contents) + ((l) + 1) * sizeof(char))


#define luaS_newliteral(L, s)	(luaS_newlstr(L, "" s, \
                                 (sizeof(s)/sizeof(char))-1))


/*
** test whether a string is a reserved word
*/
#define isreserved(s)	(strisshr(s) && (s)->extra > 0)


/*
** equality for short strings, which are always internalized
** skynet-rs: ... within one state. A shared table (lshared.c) brings into
** a state short strings made by another state, which may equal one of
** its own without being the same object; once any state holds a shared
** table, two short strings with the same hash, one of them shared, are
** also compared by contents. States use one hash seed, so equal strings
** have equal hashes everywhere.
*/
#define eqshrstr(a,b)	check_exp((a)->tt == LUA_VSHRSTR, (a) == (b) || \
	(l_unlikely(luaS_foreignstrings()) && luaS_eqshared(a, b)))

/* skynet-rs: true once a shared table was pushed into any state */
LUAI_DDEC(int luaS_sharedtablesinuse;)
#define luaS_foreignstrings()  \
	__atomic_load_n(&luaS_sharedtablesinuse, __ATOMIC_RELAXED)


LUAI_FUNC unsigned luaS_hashlongstr (TString *ts);
LUAI_FUNC int luaS_eqstr (TString *a, TString *b);
LUAI_FUNC void luaS_resize (lua_State *L, int newsize);
LUAI_FUNC void luaS_clearcache (global_State *g);
LUAI_FUNC void luaS_init (lua_State *L);
LUAI_FUNC void luaS_remove (lua_State *L, TString *ts);
LUAI_FUNC Udata *luaS_newudata (lua_State *L, size_t s,
                                              unsigned short nuvalue);
LUAI_FUNC TString *luaS_newlstr (lua_State *L, const char *str, size_t l);
/* skynet-rs: lshared.c */
LUAI_FUNC TString *luaS_findshared (const char *str, size_t l, unsigned int h,
                                    unsigned int seed);
LUAI_FUNC int luaS_sharedconflict (lua_State *L, const Proto *p);
LUAI_FUNC TString *luaS_findbyaddr (lua_State *L, const char *str);
LUAI_FUNC void luaS_cachebyaddr (const char *str, TString *ts);
LUAI_FUNC int luaS_eqshared (TString *a, TString *b);
LUAI_FUNC TString *luaS_new (lua_State *L, const char *str);
LUAI_FUNC TString *luaS_createlngstrobj (lua_State *L, size_t l);
LUAI_FUNC TString *luaS_newextlstr (lua_State *L,
		const char *s, size_t len, lua_Alloc falloc, void *ud);
LUAI_FUNC size_t luaS_sizelngstr (size_t len, int kind);
LUAI_FUNC TString *luaS_normstr (lua_State *L, TString *ts);

#endif
