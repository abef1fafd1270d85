//! `sproto.core` and `sprotoparser.core`: sproto for Lua, on the format in
//! `skynet_proto::sproto`.
//!
//! `sproto.core` has the Lua API of skynet's lsproto.c (arguments, results,
//! error texts), so that skynet's own `sproto.lua` and `sprotoloader.lua`
//! run on it unchanged. One difference is deliberate: skynet hands out raw
//! C pointers (lightuserdata) for sproto objects and types, which a forged
//! or stale value turns into a crash. Here both are full userdata holding an
//! `Arc` of the schema (a type also holds its index), checked by metatable
//! on every call; `deleteproto` drops the object's reference, and types
//! already handed out stay valid. "response nil" is still the NULL
//! lightuserdata, which encode/decode treat as "no content" as skynet does.
//!
//! `saveproto`/`loadproto` use 16 process-wide slots shared by every service.
//!
//! Encoding reads Lua tables, which may run metamethods (`__index`,
//! `__pairs`) and so raise errors or call `encode` again. The encode buffer
//! belongs to the module (upvalue 2); an encode runs under `lua_pcall` so that
//! the buffer is released whatever happens, and a nested encode (from a
//! metamethod) gets a buffer of its own. Decoding creates tables and needs
//! no buffer, but runs Lua code too (allocations may run finalizers, and a
//! result table given to `decode` may have `__newindex`), so a message block
//! it reads is lent for the call.
//!
//! Soundness: a Lua error may longjmp out of `sproto::encode`/`decode` and
//! the sources and sinks here; none of their frames holds a value with a
//! destructor (only references, integers and stack indices; our own errors
//! are returned as values and raised once nothing is left to drop). No
//! reference into a sproto object's schema is used after a call that may run
//! Lua code, which could `deleteproto` it; a type object's schema is only
//! taken by its `__gc`, so it stays valid while the type is on the stack.
//! The metatables here are set only on blocks of their Rust type; like any C
//! library, this does not defend against the debug library moving them.
//!
//! `sprotoparser.core.parse(text [, name])` compiles schema text natively
//! (skynet's parser needs lpeg).

use super::block::bytes_arg;
use super::lua::*;
use super::{shared, Shared};
use parking_lot::Mutex;
use skynet_proto::sproto::{
    self, DecodeError, DecodeVisitor, EncodeError, EncodeSource, Field, Kind, Part, Schema, Type,
    Value, MAX_DEPTH, MAX_SIZE,
};
use std::ffi::{c_int, c_void, CStr};
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// Number of process-wide schema slots (`saveproto`/`loadproto`).
pub const MAX_GLOBAL_SPROTO: usize = 16;

static GLOBAL_SPROTO: [Mutex<Option<Arc<Schema>>>; MAX_GLOBAL_SPROTO] =
    [const { Mutex::new(None) }; MAX_GLOBAL_SPROTO];

const SPROTO_MT: &CStr = c"skynet.sproto";
const TYPE_MT: &CStr = c"skynet.sproto.type";
const WORKSPACE_MT: &CStr = c"skynet.sproto.workspace";

// Upvalues of the sproto.core functions (1 is the service's Shared, read by
// `shared`).
const UP_WORKSPACE: c_int = 2;
const UP_TYPE_MT: c_int = 3;
const UP_SPROTO_MT: c_int = 4;

/// The Lua object of a schema (`newproto`, `loadproto`). `None` once deleted.
struct SprotoUd {
    schema: Option<Arc<Schema>>,
}

/// The Lua object of a type (`querytype`, `protocol`).
struct TypeUd {
    schema: Option<Arc<Schema>>,
    index: usize,
}

/// The encode and pack buffers of one Lua state.
struct Workspace {
    buf: Vec<u8>,
    pack: Vec<u8>,
    /// An encode is using `buf`.
    busy: bool,
    /// The message of an encode error, raised once the protected call is over.
    err: Option<String>,
}

/// A buffer grown past this by one big message is given back afterwards.
const KEEP_CAPACITY: usize = 1 << 20;

const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"newproto", lnewproto),
    (c"deleteproto", ldeleteproto),
    (c"dumpproto", ldumpproto),
    (c"querytype", lquerytype),
    (c"encode", lencode),
    (c"decode", ldecode),
    (c"pack", lpack),
    (c"unpack", lunpack),
    (c"protocol", lprotocol),
    (c"saveproto", lsaveproto),
    (c"loadproto", lloadproto),
    (c"default", ldefault),
];

unsafe extern "C-unwind" fn gc_sproto(l: State) -> c_int {
    // SAFETY: the __gc of SPROTO_MT, which is set only on SprotoUd blocks: a
    // non-null argument is one (a full userdata's block); taking the
    // Arc leaves a valid, deleted object behind.
    unsafe {
        let p = lua_touserdata(l, 1) as *mut SprotoUd;
        if !p.is_null() {
            drop((*p).schema.take());
        }
        0
    }
}

unsafe extern "C-unwind" fn gc_type(l: State) -> c_int {
    // SAFETY: the __gc of TYPE_MT, set only on TypeUd blocks; as in gc_sproto.
    unsafe {
        let p = lua_touserdata(l, 1) as *mut TypeUd;
        if !p.is_null() {
            drop((*p).schema.take());
        }
        0
    }
}

unsafe extern "C-unwind" fn gc_workspace(l: State) -> c_int {
    // SAFETY: the __gc of WORKSPACE_MT, set only on Workspace blocks; the
    // buffers are replaced by empty ones (no allocation), so a second
    // call finds nothing to free.
    unsafe {
        let p = lua_touserdata(l, 1) as *mut Workspace;
        if !p.is_null() {
            let ws = &mut *p;
            ws.buf = Vec::new();
            ws.pack = Vec::new();
            ws.err = None;
        }
        0
    }
}

/// Pushes the metatable `name` (created on first use) with `__gc = gc`.
///
/// # Safety
/// `l` is a live state with three free slots.
unsafe fn push_metatable(l: State, name: &CStr, gc: lua_CFunction) {
    // SAFETY: `l` is live with free slots (contract); the metatable is left on
    // the top; nothing here has a destructor if a call raises.
    unsafe {
        if luaL_newmetatable(l, name.as_ptr()) != 0 {
            lua_pushcfunction(l, gc);
            lua_setfield(l, -2, c"__gc".as_ptr());
            push_str(l, "sproto");
            lua_setfield(l, -2, c"__metatable".as_ptr());
        }
    }
}

/// Pushes a new Workspace userdata.
///
/// # Safety
/// `l` is a live state with four free slots.
unsafe fn push_workspace(l: State) -> *mut Workspace {
    // SAFETY: lua_newuserdatauv returns a fresh block of the size asked,
    // aligned by Lua for any C type (which covers Vec and Option); it
    // is written before anything else can raise. A raise before the
    // metatable is set leaks the buffers (no __gc), which is sound.
    unsafe {
        let p = lua_newuserdatauv(l, std::mem::size_of::<Workspace>(), 0) as *mut Workspace;
        p.write(Workspace {
            buf: Vec::with_capacity(2048),
            pack: Vec::new(),
            busy: false,
            err: None,
        });
        push_metatable(l, WORKSPACE_MT, gc_workspace);
        lua_setmetatable(l, -2);
        p
    }
}

/// `require "sproto.core"`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live with LUA_MINSTACK free slots (contract), enough for
    // the table and the four upvalues, which set_funcs pops; the raise
    // has nothing to drop.
    unsafe {
        let sh = skynet_context(l);
        lua_createtable(l, 0, FUNCS.len() as c_int);
        lua_pushlightuserdata(l, sh);
        push_workspace(l);
        push_metatable(l, TYPE_MT, gc_type);
        push_metatable(l, SPROTO_MT, gc_sproto);
        set_funcs(l, FUNCS, 4);
        1
    }
}

/// # Safety
/// `l` is the state of a Lua C function call with nothing with a destructor
/// alive in its frames.
unsafe fn arg_error(l: State, arg: c_int, msg: &CStr) -> ! {
    // SAFETY: luaL_argerror raises (it never returns); nothing with a
    // destructor is alive in the callers (their contract).
    unsafe {
        luaL_argerror(l, arg, msg.as_ptr());
        unreachable!("luaL_argerror returns only by raising")
    }
}

/// True if the value at `idx` is a full userdata with the metatable in upvalue `up`.
///
/// # Safety
/// Called from a function of `sproto.core` (upvalues as in `open`), `idx` an
/// acceptable index.
unsafe fn has_metatable(l: State, idx: c_int, up: c_int) -> bool {
    // SAFETY: `idx` is acceptable (contract); a metatable pushed here is
    // popped; upvalue `up` exists in this module's functions.
    unsafe {
        if lua_type(l, idx) != LUA_TUSERDATA || lua_getmetatable(l, idx) == 0 {
            return false;
        }
        let same = lua_rawequal(l, -1, lua_upvalueindex(up)) != 0;
        lua_pop(l, 1);
        same
    }
}

/// The schema of the sproto object at `idx`, or an argument error.
///
/// # Safety
/// As [`has_metatable`]. The reference is valid until the object's schema is
/// taken (`deleteproto`, which Lua code run by an allocation's finalizer may
/// call): the caller uses it before any Lua call that may allocate.
unsafe fn sproto_arg<'a>(l: State, idx: c_int, msg: &CStr) -> &'a Arc<Schema> {
    // SAFETY: the metatable check makes the value at `idx` a SprotoUd block
    // (only ours carry SPROTO_MT), alive while on the stack; arg_error
    // raises with nothing to drop.
    unsafe {
        if has_metatable(l, idx, UP_SPROTO_MT) {
            if let Some(s) = &(*(lua_touserdata(l, idx) as *const SprotoUd)).schema {
                return s;
            }
        }
        arg_error(l, idx, msg)
    }
}

/// The type at `idx`: `None` for nil or NULL ("response nil").
///
/// # Safety
/// As [`has_metatable`]; the value at `idx` stays on the stack while the result
/// is used.
unsafe fn type_arg<'a>(l: State, idx: c_int) -> Option<(&'a Schema, usize)> {
    // SAFETY: as in sproto_arg, for TypeUd blocks; their schema is taken only
    // by __gc, which cannot run while the type is on the stack, so the
    // reference stays valid for the whole call.
    unsafe {
        match lua_type(l, idx) {
            LUA_TNIL | LUA_TNONE => return None,
            LUA_TLIGHTUSERDATA if lua_touserdata(l, idx).is_null() => return None,
            _ => {}
        }
        if has_metatable(l, idx, UP_TYPE_MT) {
            let t = &*(lua_touserdata(l, idx) as *const TypeUd);
            if let Some(s) = &t.schema {
                return Some((s, t.index));
            }
        }
        arg_error(l, idx, c"Need a sproto_type object")
    }
}

/// Pushes the type object of type `index`. The sproto object at `owner`
/// caches them in its user value, so one sproto object gives one object per
/// type (as skynet's pointers are).
///
/// The schema is read from the owner only once nothing more can run Lua
/// code: an allocation may run a finalizer, which may `deleteproto` the
/// owner (the new type is then a deleted one, an error on first use).
///
/// # Safety
/// Called from a function of `sproto.core` with a sproto object at `owner`,
/// with four free slots.
unsafe fn push_type(l: State, owner: c_int, index: usize) {
    // SAFETY: `owner` is a SprotoUd (checked by the caller) with its cache
    // table as user value 1 and the name table as 2; the new block is
    // written (with no schema) before anything may raise, and its
    // schema is read from the owner after the last call that could run
    // a finalizer; each push is consumed, leaving the type on the top.
    unsafe {
        lua_getiuservalue(l, owner, 1);
        if lua_rawgeti(l, -1, index as lua_Integer + 1) == LUA_TUSERDATA {
            lua_remove(l, -2);
            return;
        }
        lua_pop(l, 1);
        let p = lua_newuserdatauv(l, std::mem::size_of::<TypeUd>(), 1) as *mut TypeUd;
        // A fresh block of the right size (see push_workspace), valid (with
        // no schema) before anything may raise; its reference to the schema
        // comes last, once its metatable's __gc would drop it.
        p.write(TypeUd {
            schema: None,
            index,
        });
        lua_pushvalue(l, lua_upvalueindex(UP_TYPE_MT));
        lua_setmetatable(l, -2);
        lua_getiuservalue(l, owner, 2);
        lua_setiuservalue(l, -2, 1);
        (*p).schema = (*(lua_touserdata(l, owner) as *const SprotoUd))
            .schema
            .clone();
        lua_pushvalue(l, -1);
        lua_rawseti(l, -3, index as lua_Integer + 1);
        lua_remove(l, -2);
    }
}

/// Pushes a sproto object with no schema yet (the caller sets it once
/// nothing more can raise, then calls [`attach_names`]).
///
/// # Safety
/// Called from a function of `sproto.core`, with three free slots.
unsafe fn push_sproto(l: State) -> *mut SprotoUd {
    // SAFETY: the new block is written before anything may raise (see
    // push_workspace); the metatable comes from upvalue 4, and the
    // cache table becomes user value 1.
    unsafe {
        let p = lua_newuserdatauv(l, std::mem::size_of::<SprotoUd>(), 2) as *mut SprotoUd;
        p.write(SprotoUd { schema: None });
        lua_pushvalue(l, lua_upvalueindex(UP_SPROTO_MT));
        lua_setmetatable(l, -2);
        lua_newtable(l);
        lua_setiuservalue(l, -2, 1);
        p
    }
}

/// Gives the sproto object on the top of the stack its second user value:
/// the field names of the schema as Lua strings, by [`Field::id`]. Encode
/// and decode index tables with them instead of interning names per field.
///
/// # Safety
/// The sproto object on the top owns (or outlives) `schema`; two free slots.
unsafe fn attach_names(l: State, schema: &Schema) {
    // SAFETY: the sproto object is on the top (contract); the table is pushed,
    // filled and popped as user value 2; `schema` is the caller's (not
    // reachable by the Lua code an allocation may run).
    unsafe {
        lua_createtable(l, clamp(schema.nfields), 0);
        for t in &schema.types {
            for f in &t.fields {
                push_str(l, f.name());
                lua_rawseti(l, -2, lua_Integer::from(f.id) + 1);
            }
        }
        lua_setiuservalue(l, -2, 2);
    }
}

/// newproto(bin): a sproto object, or nil and the reason.
unsafe extern "C-unwind" fn lnewproto(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module. `bin` borrows
    // argument 1 (on the stack throughout); the object is pushed with
    // no schema, then owns the new one before any call that may raise;
    // attach_names gets the object's own schema, which no Lua code can
    // reach yet; the error text is a ManuallyDrop while the push may
    // raise.
    unsafe {
        let bin = check_bytes(l, 1);
        let ud = push_sproto(l);
        match Schema::from_binary(bin) {
            Ok(s) => {
                // The object just pushed, which owns the schema from
                // here on (the names are made from its copy).
                (*ud).schema = Some(Arc::new(s));
                if let Some(s) = &(*ud).schema {
                    attach_names(l, s);
                }
                1
            }
            Err(e) => {
                // Kept from the destructor-skipping unwind of a memory error.
                let msg = std::mem::ManuallyDrop::new(e.to_string());
                drop(e);
                lua_pushnil(l);
                push_str(l, &msg);
                drop(std::mem::ManuallyDrop::into_inner(msg));
                2
            }
        }
    }
}

unsafe extern "C-unwind" fn ldeleteproto(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module; the metatable check
    // makes argument 1 a SprotoUd block, on the stack; the raise has
    // nothing to drop.
    unsafe {
        if !has_metatable(l, 1, UP_SPROTO_MT) {
            arg_error(l, 1, c"Need a sproto object");
        }
        let schema = (*(lua_touserdata(l, 1) as *mut SprotoUd)).schema.take();
        drop(schema);
        0
    }
}

unsafe extern "C-unwind" fn ldumpproto(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module; the schema reference
    // is used (dump) before any Lua call.
    unsafe {
        let text = sproto_arg(l, 1, c"Need a sproto_type object").dump();
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        0
    }
}

unsafe extern "C-unwind" fn lquerytype(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module. The name is checked
    // first (a conversion may run a finalizer); the schema reference is
    // used before push_type, which reads it again from the object
    // itself.
    unsafe {
        // The name first: converting a number may run a finalizer, which may
        // delete the schema a reference would point into.
        let name = check_bytes(l, 2);
        let schema = sproto_arg(l, 1, c"Need a sproto object");
        match schema.type_index(name) {
            Some(i) => {
                push_type(l, 1, i);
                1
            }
            None => 0,
        }
    }
}

/// protocol(sp, name or tag): tag or name, request type, response type
/// (NULL for `response nil`); nothing for an unknown protocol.
unsafe extern "C-unwind" fn lprotocol(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module. The schema reference
    // and `p` are only used before the first call that may allocate
    // (push_str copies the name first); after that only plain copies
    // are used, and push_type reads the schema from the object. Raises
    // have nothing to drop.
    unsafe {
        let schema = sproto_arg(l, 1, c"Need a sproto_type object");
        let p = if lua_type(l, 2) == LUA_TNUMBER {
            let tag = lua_tointegerx(l, 2, std::ptr::null_mut());
            let Some(p) = schema.protocol_by_tag(tag) else {
                return 0;
            };
            let types = (p.request, p.response, p.confirm);
            // Copies the name before any collection step could run a finalizer
            // (which may delete the schema): `p` is not used after it.
            push_str(l, p.name());
            types
        } else {
            let Some(name) = (if lua_type(l, 2) == LUA_TSTRING {
                to_bytes(l, 2)
            } else {
                None
            }) else {
                arg_error(l, 2, c"Should be number or string")
            };
            let Some(p) = schema.protocol_by_name(name) else {
                return 0;
            };
            lua_pushinteger(l, lua_Integer::from(p.tag));
            (p.request, p.response, p.confirm)
        };
        let (request, response, confirm) = p;
        match request {
            Some(t) => push_type(l, 1, t),
            None => lua_pushnil(l),
        }
        match response {
            Some(t) => push_type(l, 1, t),
            None if confirm => lua_pushlightuserdata(l, std::ptr::null_mut()),
            None => lua_pushnil(l),
        }
        3
    }
}

/// # Safety
/// Called from a function of `sproto.core`; nothing with a destructor is alive
/// in the caller.
unsafe fn slot_arg(l: State, idx: c_int) -> usize {
    // SAFETY: luaL_optinteger and the raise have nothing to drop (contract).
    unsafe {
        let i = luaL_optinteger(l, idx, 0);
        if !(0..MAX_GLOBAL_SPROTO as lua_Integer).contains(&i) {
            raise_here(l, format!("Invalid global slot index {i}"));
        }
        i as usize
    }
}

/// saveproto(sp [, slot]): shares the schema with every service (nil clears).
unsafe extern "C-unwind" fn lsaveproto(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module; the schema is cloned
    // right after the check (no Lua call between); the slot's lock is
    // held only for the replace, no Lua call.
    unsafe {
        let slot = slot_arg(l, 2);
        let schema = if lua_isnil(l, 1) != 0 {
            None
        } else {
            Some(sproto_arg(l, 1, c"Need a sproto object").clone())
        };
        let old = std::mem::replace(&mut *GLOBAL_SPROTO[slot].lock(), schema);
        drop(old);
        0
    }
}

unsafe extern "C-unwind" fn lloadproto(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module. The guard in the `if`
    // condition is dropped before the raise (a temporary of the
    // condition); the object is pushed, then owns its reference, and
    // attach_names gets a schema no Lua code can reach yet.
    unsafe {
        let slot = slot_arg(l, 1);
        if GLOBAL_SPROTO[slot].lock().is_none() {
            raise_here(l, format!("nil sproto at index {slot}"));
        }
        let ud = push_sproto(l);
        // The object just pushed, which owns its reference from here
        // on. (A slot emptied meanwhile leaves a deleted object, an error on
        // first use.)
        (*ud).schema = GLOBAL_SPROTO[slot].lock().clone();
        if let Some(s) = &(*ud).schema {
            attach_names(l, s);
        }
        1
    }
}

// ---- encode ---------------------------------------------------------------

enum EncodeFailure {
    Limit(EncodeError),
    Msg(String),
}

impl From<EncodeError> for EncodeFailure {
    fn from(e: EncodeError) -> Self {
        EncodeFailure::Limit(e)
    }
}

#[derive(Clone, Copy)]
enum Walk {
    /// `t[1], t[2], ...` (lua_geti).
    Index,
    /// `next`, the key kept in the slot.
    Next { key: c_int },
    /// A `__pairs` iterator: function, state and control variable in three slots.
    Pairs { func: c_int },
}

#[derive(Clone, Copy)]
struct ArrayFrame {
    container: c_int,
    walk: Walk,
    /// Map entries: the slots of the current key and value.
    entry_key: c_int,
    entry_value: c_int,
}

const NO_ARRAY: ArrayFrame = ArrayFrame {
    container: 0,
    walk: Walk::Index,
    entry_key: 0,
    entry_value: 0,
};

/// Reads the values of an encode from the Lua stack. Every value the encoder
/// is working on sits on the stack; the frames only say where.
struct LuaSource {
    l: State,
    /// The slot of the field-name table (see [`attach_names`]).
    names: c_int,
    structs: [c_int; MAX_DEPTH + 2],
    nstructs: usize,
    arrays: [ArrayFrame; MAX_DEPTH + 2],
    narrays: usize,
    /// The stack has room up to this index (checked in steps, not per struct).
    room: c_int,
}

impl LuaSource {
    /// Makes sure 8 more slots can be pushed.
    #[inline]
    unsafe fn reserve(&mut self) {
        // SAFETY: `l` is the encode's state; the check raises only with plain
        // data and references alive (see the module doc).
        unsafe {
            let top = lua_gettop(self.l);
            if top + 8 > self.room {
                luaL_checkstack(self.l, 40, std::ptr::null());
                self.room = top + 40;
            }
        }
    }
}

/// # Safety
/// The current value is on the top of `l`'s stack.
unsafe fn type_mismatch(l: State, ty: &Type, f: &Field, index: usize, want: &str) -> EncodeFailure {
    // SAFETY: the current value is on the top (contract); the message is built,
    // nothing raised.
    unsafe {
        EncodeFailure::Msg(format!(
            "{}.{}[{index}] is not {want} (Is a {})",
            ty.name(),
            f.name(),
            type_name(l, -1)
        ))
    }
}

impl EncodeSource for LuaSource {
    type Error = EncodeFailure;

    #[inline]
    fn field(&mut self, _ty: &Type, f: &Field) -> Result<bool, EncodeFailure> {
        let t = self.structs[self.nstructs - 1];
        // SAFETY: `t` and `names` are live stack slots of this state (see
        // LuaSource); the name table has a string for every field id.
        unsafe {
            lua_rawgeti(self.l, self.names, lua_Integer::from(f.id) + 1);
            if lua_gettable(self.l, t) == LUA_TNIL {
                lua_pop(self.l, 1);
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn entry_part(&mut self, part: Part) {
        let a = self.arrays[self.narrays - 1];
        let slot = if part == Part::Key {
            a.entry_key
        } else {
            a.entry_value
        };
        // SAFETY: the slots were filled by next_element.
        unsafe { lua_pushvalue(self.l, slot) };
    }

    fn end_entry(&mut self) {
        let a = self.arrays[self.narrays - 1];
        // SAFETY: drops the entry's value (and anything left above it).
        unsafe { lua_settop(self.l, a.entry_value - 1) };
    }

    #[inline]
    fn integer(&mut self, ty: &Type, f: &Field, index: usize) -> Result<i64, EncodeFailure> {
        let l = self.l;
        // SAFETY: the current value is on the top of the stack.
        unsafe {
            let mut isnum = 0;
            let v = lua_tointegerx(l, -1, &mut isnum);
            if isnum == 0 {
                return Err(type_mismatch(l, ty, f, index, "an integer"));
            }
            lua_pop(l, 1);
            Ok(v)
        }
    }

    #[inline]
    fn number(&mut self, ty: &Type, f: &Field, index: usize) -> Result<f64, EncodeFailure> {
        let l = self.l;
        // SAFETY: as in `integer`.
        unsafe {
            let mut isnum = 0;
            let v = lua_tonumberx(l, -1, &mut isnum);
            if isnum == 0 {
                return Err(type_mismatch(l, ty, f, index, "a number"));
            }
            lua_pop(l, 1);
            Ok(v)
        }
    }

    #[inline]
    fn boolean(&mut self, ty: &Type, f: &Field, index: usize) -> Result<bool, EncodeFailure> {
        let l = self.l;
        // SAFETY: as in `integer`.
        unsafe {
            if lua_type(l, -1) != LUA_TBOOLEAN {
                return Err(type_mismatch(l, ty, f, index, "a boolean"));
            }
            let b = lua_toboolean(l, -1) != 0;
            lua_pop(l, 1);
            Ok(b)
        }
    }

    #[inline]
    fn string(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeFailure> {
        let l = self.l;
        // SAFETY: as in `integer`; the bytes are copied before the string
        // leaves the stack.
        unsafe {
            if lua_type(l, -1) != LUA_TSTRING {
                return Err(type_mismatch(l, ty, f, index, "a string"));
            }
            let s = to_bytes(l, -1).unwrap_or_default();
            if s.len() > MAX_SIZE {
                return Err(EncodeError::TooLarge.into());
            }
            out.extend_from_slice(s);
            lua_pop(l, 1);
        }
        Ok(())
    }

    fn begin_struct(&mut self, ty: &Type, f: &Field, index: usize) -> Result<(), EncodeFailure> {
        let l = self.l;
        // SAFETY: the current value is on the top of the stack.
        unsafe {
            let t = lua_type(l, -1);
            if t != LUA_TTABLE && (t != LUA_TUSERDATA || lua_getmetatable(l, -1) == 0) {
                return Err(type_mismatch(l, ty, f, index, "a table"));
            }
            if t == LUA_TUSERDATA {
                lua_pop(l, 1);
            }
            self.reserve();
            if self.nstructs == self.structs.len() {
                return Err(EncodeError::TooDeep.into());
            }
            self.structs[self.nstructs] = lua_gettop(l);
        }
        self.nstructs += 1;
        Ok(())
    }

    fn end_struct(&mut self) {
        self.nstructs -= 1;
        // SAFETY: pops the struct (the slot begin_struct recorded) and above.
        unsafe { lua_settop(self.l, self.structs[self.nstructs] - 1) };
    }

    fn begin_array(&mut self, ty: &Type, f: &Field) -> Result<(), EncodeFailure> {
        let l = self.l;
        if self.narrays == self.arrays.len() {
            return Err(EncodeError::TooDeep.into());
        }
        // SAFETY: the container is on the top of the stack; everything
        // pushed here stays above it until end_array.
        unsafe {
            self.reserve();
            let container = lua_gettop(l);
            let keyed = f.key.is_some();
            let has_pairs = luaL_getmetafield(l, container, c"__pairs".as_ptr()) != LUA_TNIL;
            let walk = if has_pairs && keyed {
                lua_pushvalue(l, container);
                lua_call(l, 1, 3);
                Walk::Pairs {
                    func: container + 1,
                }
            } else {
                if has_pairs {
                    lua_pop(l, 1);
                } else if lua_type(l, container) != LUA_TTABLE {
                    return Err(EncodeFailure::Msg(format!(
                        "{}.{}(1) should be a table or an userdata with metamethods (Is a {})",
                        ty.name(),
                        f.name(),
                        type_name(l, container)
                    )));
                }
                if keyed {
                    lua_pushnil(l);
                    Walk::Next { key: container + 1 }
                } else {
                    Walk::Index
                }
            };
            self.arrays[self.narrays] = ArrayFrame {
                container,
                walk,
                ..NO_ARRAY
            };
        }
        self.narrays += 1;
        Ok(())
    }

    fn next_element(&mut self, _ty: &Type, f: &Field, index: usize) -> Result<bool, EncodeFailure> {
        let l = self.l;
        let a = &mut self.arrays[self.narrays - 1];
        // SAFETY: the frame's slots are live (begin_array); each branch
        // leaves the element (or a map entry's key and value) on the top.
        unsafe {
            let key_slot = match a.walk {
                Walk::Index => {
                    if lua_geti(l, a.container, index as lua_Integer) == LUA_TNIL {
                        lua_pop(l, 1);
                        return Ok(false);
                    }
                    return Ok(true);
                }
                Walk::Next { key } => {
                    lua_pushvalue(l, key);
                    if lua_next(l, a.container) == 0 {
                        return Ok(false);
                    }
                    key
                }
                Walk::Pairs { func } => {
                    lua_pushvalue(l, func);
                    lua_pushvalue(l, func + 1);
                    lua_pushvalue(l, func + 2);
                    lua_call(l, 2, 2);
                    if lua_isnil(l, -2) != 0 {
                        lua_pop(l, 2);
                        return Ok(false);
                    }
                    func + 2
                }
            };
            // key, value on the top: keep the key for the next step.
            lua_pushvalue(l, -2);
            lua_replace(l, key_slot);
            lua_remove(l, -2);
            if f.map {
                a.entry_key = key_slot;
                a.entry_value = lua_gettop(l);
            }
        }
        Ok(true)
    }

    fn end_array(&mut self) {
        self.narrays -= 1;
        // SAFETY: pops the container and the walk's slots.
        unsafe { lua_settop(self.l, self.arrays[self.narrays].container - 1) };
    }
}

/// The protected part of `encode`: arguments schema (lightuserdata), type
/// index, table, workspace, field names.
unsafe extern "C-unwind" fn encode_protected(l: State) -> c_int {
    // SAFETY: lencode passes a schema that the type object on its stack
    // keeps alive, and a workspace marked busy for this call only. Nothing
    // here owns a value with a destructor while Lua may raise: the buffer
    // belongs to the workspace, the source holds stack indices, and error
    // texts go to the workspace before returning. Only the buffer is
    // borrowed across the Lua code the encode runs (see below).
    unsafe {
        let schema = &*(lua_touserdata(l, 1) as *const Schema);
        let index = lua_tointegerx(l, 2, std::ptr::null_mut()) as usize;
        // Only this encode's buffer is borrowed across the Lua code it runs:
        // a nested encode reads `busy` and a nested pack takes `pack`, fields
        // no reference here covers.
        let ws = lua_touserdata(l, 4) as *mut Workspace;
        let t = lua_type(l, 3);
        if t != LUA_TTABLE && (t != LUA_TUSERDATA || lua_getmetatable(l, 3) == 0) {
            (*ws).err = Some(format!(
                "bad argument #2 to 'encode' (table expected, got {})",
                type_name(l, 3)
            ));
            return 0;
        }
        // The table goes on the top, above the workspace and the names.
        lua_settop(l, 5);
        lua_rotate(l, 3, -1);
        let mut src = LuaSource {
            l,
            names: 4,
            structs: [0; MAX_DEPTH + 2],
            nstructs: 1,
            arrays: [NO_ARRAY; MAX_DEPTH + 2],
            narrays: 0,
            room: 0,
        };
        src.structs[0] = 5;
        let buf = &mut (*ws).buf;
        buf.clear();
        match sproto::encode(schema, index, &mut src, buf) {
            Ok(()) => {
                push_bytes(l, buf);
                1
            }
            Err(EncodeFailure::Limit(e)) => {
                (*ws).err = Some(e.to_string());
                0
            }
            Err(EncodeFailure::Msg(m)) => {
                (*ws).err = Some(m);
                0
            }
        }
    }
}

/// encode(type, table): the encoded string; encode(nil or NULL, nil) is "".
unsafe extern "C-unwind" fn lencode(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module. `schema` lives in the
    // type object at index 1 for the whole call; `ws` is upvalue 2's
    // Workspace or one pushed here (kept on the stack), used through
    // the raw pointer only, never across a call that runs Lua code with
    // a reference; the pcall contains every error of the encode, and
    // the raises after it have nothing to drop (the error text is moved
    // in).
    unsafe {
        let Some((schema, index)) = type_arg(l, 1) else {
            luaL_checktype(l, 2, LUA_TNIL);
            push_str(l, "");
            return 1;
        };
        lua_settop(l, 2);
        let mut ws = lua_touserdata(l, lua_upvalueindex(UP_WORKSPACE)) as *mut Workspace;
        // Upvalue 2 is this module's Workspace; a nested encode (from a
        // metamethod of the outer one) makes its own, kept on the stack. The
        // schema lives in the type object at index 1 for the whole call.
        if (*ws).busy {
            ws = push_workspace(l);
        }
        (*ws).busy = true;
        (*ws).err = None;
        lua_pushcfunction(l, encode_protected);
        lua_pushlightuserdata(l, schema as *const Schema as *mut c_void);
        lua_pushinteger(l, index as lua_Integer);
        lua_pushvalue(l, 2);
        lua_pushlightuserdata(l, ws as *mut c_void);
        lua_getiuservalue(l, 1, 1);
        let r = lua_pcall(l, 5, 1, 0);
        (*ws).busy = false;
        if (*ws).buf.capacity() > KEEP_CAPACITY {
            (*ws).buf = Vec::with_capacity(2048);
        }
        if r != LUA_OK {
            lua_error(l);
        }
        if let Some(msg) = (*ws).err.take() {
            raise_here(l, msg);
        }
        1
    }
}

// ---- decode ---------------------------------------------------------------

enum DecodeFailure {
    Decode(DecodeError),
    Msg(String),
}

impl From<DecodeError> for DecodeFailure {
    fn from(e: DecodeError) -> Self {
        DecodeFailure::Decode(e)
    }
}

#[derive(Clone, Copy)]
enum Frame {
    /// A struct table; `key` is the slot collecting its main-index field.
    Table {
        t: c_int,
        key: c_int,
        key_tag: i32,
    },
    /// A map entry: the slots of its key and value.
    Entry {
        k: c_int,
        v: c_int,
        ktag: u16,
        vtag: u16,
    },
    Array {
        a: c_int,
    },
}

/// Builds the decoded tables on the Lua stack.
struct LuaSink {
    l: State,
    /// The slot of the field-name table (see [`attach_names`]).
    names: c_int,
    frames: [Frame; 2 * MAX_DEPTH + 4],
    n: usize,
}

impl LuaSink {
    fn push_frame(&mut self, f: Frame) -> Result<(), DecodeFailure> {
        if self.n == self.frames.len() {
            return Err(DecodeError::TooDeep.into());
        }
        self.frames[self.n] = f;
        self.n += 1;
        Ok(())
    }

    /// Stores the value on the top of the stack as field `f` of the current struct.
    /// # Safety
    /// Called by the decoder with a value on the top of `l`'s stack.
    #[inline]
    unsafe fn store(&mut self, f: &Field) {
        // SAFETY: the frames name live slots of this state (LuaSink), with room
        // checked by begin_array/begin_struct; a value is on the top;
        // lua_settable may run a given table's __newindex, whose errors
        // cross only plain data (module doc).
        unsafe {
            let l = self.l;
            match self.frames[self.n - 1] {
                Frame::Table { t, key, key_tag } => {
                    if key_tag == i32::from(f.tag) && !f.array {
                        lua_pushvalue(l, -1);
                        lua_replace(l, key);
                    }
                    lua_rawgeti(l, self.names, lua_Integer::from(f.id) + 1);
                    lua_insert(l, -2);
                    lua_settable(l, t);
                }
                Frame::Entry { k, v, ktag, vtag } => {
                    if f.tag == ktag {
                        lua_replace(l, k);
                    } else if f.tag == vtag {
                        lua_replace(l, v);
                    } else {
                        lua_pop(l, 1);
                    }
                }
                Frame::Array { .. } => lua_pop(l, 1),
            }
        }
    }

    /// # Safety
    /// `self.l` has a free slot; `v`'s bytes are valid.
    #[inline]
    unsafe fn push_value(&self, v: Value<'_>) {
        // SAFETY: one push into a slot the frame's check reserved; `b` is
        // copied by Lua.
        unsafe {
            match v {
                Value::Integer(i) => lua_pushinteger(self.l, i),
                Value::Real(r) => lua_pushnumber(self.l, r),
                Value::Boolean(b) => lua_pushboolean(self.l, c_int::from(b)),
                Value::Bytes(b) => push_bytes(self.l, b),
            }
        }
    }

    fn array_slot(&self) -> c_int {
        match self.frames[self.n - 1] {
            Frame::Array { a } => a,
            _ => 0,
        }
    }
}

fn clamp(n: usize) -> c_int {
    n.min(1 << 16) as c_int
}

impl DecodeVisitor for LuaSink {
    type Error = DecodeFailure;

    #[inline]
    fn value(
        &mut self,
        _ty: &Type,
        f: &Field,
        index: usize,
        v: Value<'_>,
    ) -> Result<(), DecodeFailure> {
        // SAFETY: the frames name live slots of this state; a value is
        // pushed then stored, leaving the stack as it was.
        unsafe {
            if index > 0 {
                self.push_value(v);
                lua_rawseti(self.l, self.array_slot(), index as lua_Integer);
            } else if let Frame::Table { t, key_tag: -1, .. } = self.frames[self.n - 1] {
                // The common case: the key first, no main index to keep.
                lua_rawgeti(self.l, self.names, lua_Integer::from(f.id) + 1);
                self.push_value(v);
                lua_settable(self.l, t);
            } else {
                self.push_value(v);
                self.store(f);
            }
        }
        Ok(())
    }

    fn begin_array(&mut self, _ty: &Type, f: &Field, len: usize) -> Result<(), DecodeFailure> {
        // SAFETY: pushes the array table, which stays until end_array.
        unsafe {
            luaL_checkstack(self.l, 8, std::ptr::null());
            if f.key.is_some() {
                lua_createtable(self.l, 0, clamp(len));
            } else {
                lua_createtable(self.l, clamp(len), 0);
            }
            self.push_frame(Frame::Array {
                a: lua_gettop(self.l),
            })
        }
    }

    fn end_array(&mut self, _ty: &Type, f: &Field) -> Result<(), DecodeFailure> {
        self.n -= 1;
        // SAFETY: the array table is on the top.
        unsafe { self.store(f) };
        Ok(())
    }

    fn begin_struct(
        &mut self,
        _ty: &Type,
        f: &Field,
        index: usize,
        sub: &Type,
        words: usize,
    ) -> Result<(), DecodeFailure> {
        let l = self.l;
        // SAFETY: pushes the struct's slots, which stay until end_struct.
        unsafe {
            luaL_checkstack(l, 8, std::ptr::null());
            if f.map && index > 0 {
                lua_pushnil(l);
                lua_pushnil(l);
                let top = lua_gettop(l);
                return self.push_frame(Frame::Entry {
                    k: top - 1,
                    v: top,
                    ktag: sub.fields[0].tag,
                    vtag: sub.fields[1].tag,
                });
            }
            lua_createtable(l, 0, clamp(words));
            let t = lua_gettop(l);
            match (index > 0, f.key) {
                (true, Some(k)) => {
                    lua_pushnil(l);
                    self.push_frame(Frame::Table {
                        t,
                        key: t + 1,
                        key_tag: i32::from(k),
                    })
                }
                _ => self.push_frame(Frame::Table {
                    t,
                    key: 0,
                    key_tag: -1,
                }),
            }
        }
    }

    fn end_struct(
        &mut self,
        _ty: &Type,
        f: &Field,
        index: usize,
        _sub: &Type,
    ) -> Result<(), DecodeFailure> {
        let l = self.l;
        self.n -= 1;
        let frame = self.frames[self.n];
        // SAFETY: the slots of `frame` are the top of the stack; the parent
        // frame's slots are below them.
        unsafe {
            match frame {
                Frame::Entry { k, v, .. } => {
                    if lua_isnil(l, k) != 0 {
                        return Err(DecodeFailure::Msg(format!(
                            "Can't find key field in [{}]",
                            f.name()
                        )));
                    }
                    if lua_isnil(l, v) != 0 {
                        return Err(DecodeFailure::Msg(format!(
                            "Can't find value field in [{}]",
                            f.name()
                        )));
                    }
                    lua_rawset(l, self.array_slot());
                }
                Frame::Table { t, key, .. } if key != 0 => {
                    if lua_isnil(l, key) != 0 {
                        return Err(DecodeFailure::Msg(format!(
                            "Can't find main index (tag={}) in [{}]",
                            f.key.unwrap_or_default(),
                            f.name()
                        )));
                    }
                    lua_pushvalue(l, key);
                    lua_pushvalue(l, t);
                    lua_rawset(l, self.array_slot());
                    lua_settop(l, t - 1);
                }
                Frame::Table { .. } if index > 0 => {
                    lua_rawseti(l, self.array_slot(), index as lua_Integer);
                }
                _ => self.store(f),
            }
        }
        Ok(())
    }
}

/// decode(type, string or pointer+size [, table]): the table and the number
/// of bytes used; nothing for a nil type.
unsafe extern "C-unwind" fn ldecode(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module. `schema` lives in the
    // type object at index 1; `data` is a string argument on the stack,
    // a lent own block, or a pinned shared block, so it stays valid
    // while the decode runs Lua code; the decode's own errors are
    // returned and raised after the loan ends (DecodeError has no
    // destructor, the message is moved in).
    unsafe {
        let Some((schema, index)) = type_arg(l, 1) else {
            return 0;
        };
        let sh = shared(l);
        // Decoding runs Lua code (allocations may run finalizers; a given
        // result table may have __newindex), which may trash a message block
        // being read: one of the service's own blocks is lent for the decode.
        let mut loan = 0;
        let data = match lent_block(l, sh, 2) {
            Some((p, bytes)) => {
                loan = p;
                bytes
            }
            None => bytes_arg(l, sh, 2, "sproto.decode"),
        };
        if lua_type(l, -1) != LUA_TTABLE {
            lua_newtable(l);
        }
        let result = lua_gettop(l);
        lua_getiuservalue(l, 1, 1);
        let mut sink = LuaSink {
            l,
            names: result + 1,
            frames: [Frame::Array { a: 0 }; 2 * MAX_DEPTH + 4],
            n: 1,
        };
        sink.frames[0] = Frame::Table {
            t: result,
            key: 0,
            key_tag: -1,
        };
        let r = sproto::decode(schema, index, data, &mut sink);
        if loan != 0 {
            (*sh.buffers.get()).end_loan(loan);
        }
        match r {
            Ok(used) => {
                lua_settop(l, result);
                lua_pushinteger(l, used as lua_Integer);
                2
            }
            Err(DecodeFailure::Decode(e)) => raise_here(l, e.to_string()),
            Err(DecodeFailure::Msg(m)) => raise_here(l, m),
        }
    }
}

/// The service's own block named by the lightuserdata at `idx` (size at
/// `idx + 1`), lent until [`Buffers::end_loan`](super::buffers::Buffers::end_loan)
/// or the end of the message, with its address; None for anything else
/// (which `bytes_arg` then takes or refuses).
///
/// # Safety
/// Called from a function of `sproto.core` (upvalue 1 is `sh`), on the
/// service's thread with no borrow of its buffers alive; the caller ends the
/// loan.
unsafe fn lent_block<'a>(l: State, sh: &Shared, idx: c_int) -> Option<(usize, &'a [u8])> {
    // SAFETY: `idx` and `idx + 1` are argument slots (contract); the check
    // raises with nothing to drop; the buffers are borrowed for the
    // statement only; a lent block's bytes stay valid and unchanged
    // until end_loan or the end of the message.
    unsafe {
        if lua_type(l, idx) != LUA_TLIGHTUSERDATA {
            return None;
        }
        let p = lua_touserdata(l, idx) as usize;
        let sz = luaL_checkinteger(l, idx + 1);
        if p == 0 || sz <= 0 {
            return None;
        }
        let (ptr, n) = (*sh.buffers.get()).lend(p, sz as usize)?;
        Some((p, std::slice::from_raw_parts(ptr, n)))
    }
}

/// default(type): a table with every field's default value.
unsafe extern "C-unwind" fn ldefault(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module; `schema` lives in the
    // type object at index 1 (type_arg), so it stays valid while the
    // pushes run finalizers; `index` is the type's own; each pair is
    // rawset into the new table on the top.
    unsafe {
        let Some((schema, index)) = type_arg(l, 1) else {
            arg_error(l, 1, c"Need a sproto_type object")
        };
        let ty = &schema.types[index];
        lua_createtable(l, 0, clamp(ty.fields.len()));
        for f in &ty.fields {
            push_str(l, f.name());
            if f.array {
                lua_createtable(l, 0, 1);
                push_default(l, schema, f, true);
                lua_setfield(l, -2, c"__array".as_ptr());
            } else {
                push_default(l, schema, f, false);
            }
            lua_rawset(l, -3);
        }
        1
    }
}

/// # Safety
/// `l` has three free slots.
unsafe fn push_default(l: State, schema: &Schema, f: &Field, in_array: bool) {
    // SAFETY: pushes one value (and builds one small table) into free slots
    // (contract); names are copied by Lua.
    unsafe {
        match f.kind {
            Kind::Integer => lua_pushinteger(l, 0),
            Kind::Decimal { .. } | Kind::Double => lua_pushnumber(l, 0.0),
            Kind::Boolean => lua_pushboolean(l, 0),
            Kind::String | Kind::Binary => push_str(l, ""),
            Kind::Struct(i) => {
                let name = schema.types[i].name();
                if in_array {
                    push_str(l, name);
                } else {
                    lua_createtable(l, 0, 1);
                    push_str(l, name);
                    lua_setfield(l, -2, c"__type".as_ptr());
                }
            }
        }
    }
}

// ---- pack -----------------------------------------------------------------

/// pack(string or pointer+size): the 0-packed string.
unsafe extern "C-unwind" fn lpack(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module; `src` is read only
    // before the push; the workspace is upvalue 2's, whose buffer is
    // taken out (a ManuallyDrop) so a finalizer run by the push cannot
    // reach it.
    unsafe {
        let src = bytes_arg(l, shared(l), 1, "sproto.pack");
        if sproto::pack::packed_bound(src.len()) > MAX_SIZE {
            raise_here(l, EncodeError::TooLarge.to_string());
        }
        let ws = lua_touserdata(l, lua_upvalueindex(UP_WORKSPACE)) as *mut Workspace;
        // The buffer is taken out for the call: the push may run a finalizer
        // that packs too (it gets an empty buffer). A raise (out of memory)
        // leaks it: a ManuallyDrop.
        let mut buf = ManuallyDrop::new(std::mem::take(&mut (*ws).pack));
        buf.clear();
        sproto::pack(src, &mut buf);
        push_bytes(l, &buf);
        (*ws).pack = ManuallyDrop::into_inner(buf);
        1
    }
}

/// unpack(string or pointer+size): the unpacked string.
unsafe extern "C-unwind" fn lunpack(l: State) -> c_int {
    // SAFETY: as in lpack; the buffer is given back before the raise, which
    // then has nothing to drop (the message is moved in).
    unsafe {
        let src = bytes_arg(l, shared(l), 1, "sproto.unpack");
        let ws = lua_touserdata(l, lua_upvalueindex(UP_WORKSPACE)) as *mut Workspace;
        // As in lpack; the buffer is given back before an unpack error is
        // raised.
        let mut buf = ManuallyDrop::new(std::mem::take(&mut (*ws).pack));
        buf.clear();
        if let Err(e) = sproto::unpack(src, &mut buf) {
            let msg = e.to_string();
            buf.clear();
            (*ws).pack = ManuallyDrop::into_inner(buf);
            raise_here(l, msg);
        }
        push_bytes(l, &buf);
        let mut buf = ManuallyDrop::into_inner(buf);
        if buf.capacity() > KEEP_CAPACITY {
            buf = Vec::new();
        }
        (*ws).pack = buf;
        1
    }
}

// ---- sprotoparser.core ----------------------------------------------------

/// `require "sprotoparser.core"`: `parse(text [, name])`.
pub unsafe extern "C-unwind" fn open_parser(l: State) -> c_int {
    // SAFETY: `l` is live with free slots; set_funcs with no upvalues.
    unsafe {
        lua_createtable(l, 0, 1);
        set_funcs(l, &[(c"parse", lparse)], 0);
        1
    }
}

/// parse(text [, name]): the compiled schema; raises the error (with the
/// line) for a bad schema.
unsafe extern "C-unwind" fn lparse(l: State) -> c_int {
    // SAFETY: called by Lua as a function of this module; `text` borrows
    // argument 1; the name Cow is dropped before anything may raise,
    // the compiled bytes are a ManuallyDrop across the push, and the
    // error's message is moved into raise (ParseError's other field is
    // an integer).
    unsafe {
        let text = check_bytes(l, 1);
        let name = if lua_isnoneornil(l, 2) != 0 {
            "=text".into()
        } else {
            check_str(l, 2)
        };
        let r = sproto::parse(text, &name);
        drop(name);
        match r {
            Ok(bin) => {
                // Kept from the destructor-skipping unwind of a memory error.
                let bin = std::mem::ManuallyDrop::new(bin);
                push_bytes(l, &bin);
                drop(std::mem::ManuallyDrop::into_inner(bin));
                1
            }
            Err(e) => raise(l, e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_slots_start_empty_and_hold_a_schema() {
        let s = Arc::new(Schema::from_binary(&[0, 0]).unwrap());
        let slot = MAX_GLOBAL_SPROTO - 1;
        *GLOBAL_SPROTO[slot].lock() = Some(s.clone());
        assert!(Arc::ptr_eq(
            GLOBAL_SPROTO[slot].lock().as_ref().unwrap(),
            &s
        ));
        *GLOBAL_SPROTO[slot].lock() = None;
        assert_eq!(
            Arc::strong_count(&s),
            1,
            "clearing a slot drops its reference"
        );
    }
}
