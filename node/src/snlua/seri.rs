//! The Lua side of skynet's pack format: walks Lua values into a
//! [`SeriWriter`] and pushes the tokens of a [`SeriReader`] back as Lua values,
//! with lua-seri's rules (raw border for arrays, `__pairs` proxies, depth 32,
//! integer keys inside the border skipped in the hash part).
//!
//! Soundness: packing may run Lua code (`__pairs` metamethods), which may
//! raise; unpacking may raise for lack of memory. Nothing alive across those
//! calls has a destructor: the writer and reader hold only references, peeks
//! are plain data, and errors of ours are returned, never raised here. A
//! string described by a peek but not pushed is written out before any Lua
//! code can run, while the table that holds it is on the stack.

use super::lua::*;
use skynet_proto::seri::{
    DecodeError, Item, PackError, SeriReader, SeriWriter, MAX_DECODE_DEPTH, MAX_DEPTH,
};
use std::ffi::{c_int, c_void};

/// What the vendored Lua's `lua_peek` family reports about a value (see
/// `lua_Peek` in vendor/lua-src/lua-5.5.1/lua.h): one call instead of
/// `lua_type` + `lua_isinteger` + `lua_tointeger`/`lua_tolstring`.
#[repr(C)]
struct Peek {
    ty: c_int,
    isint: c_int,
    i: lua_Integer,
    n: lua_Number,
    p: *const c_void,
    len: usize,
}

impl Peek {
    fn new() -> Peek {
        Peek {
            ty: LUA_TNIL,
            isint: 0,
            i: 0,
            n: 0.0,
            p: std::ptr::null(),
            len: 0,
        }
    }
}

extern "C-unwind" {
    fn lua_peek(l: State, idx: c_int, out: *mut Peek);
    /// Pushes t[n] only when it is not a scalar; returns whether it did.
    fn lua_rawgetipeek(l: State, idx: c_int, n: lua_Integer, out: *mut Peek) -> c_int;
    fn lua_rawborder(l: State, idx: c_int, cursor: *mut u32) -> lua_Unsigned;
    /// 0: no more entries; 1: both scalars, nothing pushed; 2: both pushed.
    fn lua_nextslot(
        l: State,
        idx: c_int,
        cursor: *mut u32,
        key: *mut Peek,
        val: *mut Peek,
    ) -> c_int;
    fn lua_buildtable(l: State, narray: c_int, npairs: c_int);
}

/// Packs the values at stack positions `from..=top` into `out` (appended).
/// A lightuserdata among them (not inside a table) is written as the address
/// `top_pointer` gives for it (see `skynet.core`'s pack: a block handed to
/// the receiver). `top_pointer` must not raise a Lua error. Lua errors raised
/// by metamethods propagate; our own errors are returned.
///
/// # Safety
/// `l` is a live state, `from >= 1`. Lua errors may longjmp out of this
/// call: the caller keeps nothing with a destructor alive (`out` included,
/// e.g. a ManuallyDrop buffer).
pub unsafe fn pack_args(
    l: State,
    from: c_int,
    out: &mut Vec<u8>,
    top_pointer: &mut dyn FnMut(usize) -> usize,
) -> Result<(), Box<PackError>> {
    // SAFETY: `l` is live (contract).
    let top = unsafe { lua_gettop(l) };
    let mut w = SeriWriter::new(out);
    let mut v = Peek::new();
    for i in from..=top {
        // SAFETY: `from..=top` are valid stack indices; `v` is a Peek the
        // vendored Lua fills in.
        unsafe { lua_peek(l, i, &mut v) };
        if v.ty == LUA_TLIGHTUSERDATA {
            v.p = top_pointer(v.p as usize) as *const c_void;
        }
        // SAFETY: `v` describes the value at `i`, on the stack.
        unsafe { pack_value(l, &mut w, i, &v, 0) }?;
    }
    Ok(())
}

/// Packs the value `v` describes; `idx` is its stack position when it has one
/// (tables and unsupported types always do; 0 for a scalar not pushed).
///
/// # Safety
/// As [`pack_args`]; `v` is a fresh peek of a value that is on the stack at
/// `idx` or held by a table on the stack, and no Lua code ran since.
unsafe fn pack_value(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    v: &Peek,
    depth: usize,
) -> Result<(), Box<PackError>> {
    if depth > MAX_DEPTH {
        return Err(Box::new(PackError::TooDeep));
    }
    match v.ty {
        LUA_TNIL => w.nil(),
        LUA_TNUMBER => {
            if v.isint != 0 {
                w.integer(v.i);
            } else {
                w.real(v.n);
            }
        }
        LUA_TBOOLEAN => w.boolean(v.i != 0),
        LUA_TSTRING => {
            // SAFETY: a string peek points at `len` bytes of a Lua string,
            // kept alive by the stack or its table (contract); it is copied
            // before any Lua code runs.
            let s = unsafe { std::slice::from_raw_parts(v.p as *const u8, v.len) };
            w.string(s).map_err(Box::new)?;
        }
        LUA_TLIGHTUSERDATA => w.pointer(v.p as usize as u64),
        LUA_TTABLE => {
            // SAFETY: a table is never peek-only, so it is on the stack at
            // `idx` (contract).
            unsafe {
                let idx = lua_absindex(l, idx);
                pack_table(l, w, idx, depth + 1)?;
            }
        }
        _ => {
            // SAFETY: as for tables: such a value is on the stack at `idx`.
            let name = unsafe { type_name(l, idx) };
            return Err(Box::new(PackError::Unsupported(name.to_string())));
        }
    }
    Ok(())
}

/// The value at `idx`, described by a fresh peek.
///
/// # Safety
/// As [`pack_args`]; `idx` is a valid stack index.
#[inline]
unsafe fn pack_at(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    depth: usize,
) -> Result<(), Box<PackError>> {
    let mut v = Peek::new();
    // SAFETY: `idx` is valid (contract); the peek is used right away.
    unsafe {
        lua_peek(l, idx, &mut v);
        pack_value(l, w, idx, &v, depth)
    }
}

/// # Safety
/// As [`pack_args`]; `idx` is the absolute index of a table.
unsafe fn pack_table(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    depth: usize,
) -> Result<(), Box<PackError>> {
    // SAFETY: `idx` is a table (contract); the stack check raises with
    // nothing to drop; the metatable is popped, a found `__pairs` is left on
    // the top for pack_proxy.
    unsafe {
        luaL_checkstack(l, LUA_MINSTACK, std::ptr::null());
        // Most tables have no metatable: skip the `__pairs` lookup for them.
        if lua_getmetatable(l, idx) != 0 {
            lua_pop(l, 1);
            if luaL_getmetafield(l, idx, c"__pairs".as_ptr()) != LUA_TNIL {
                return pack_proxy(l, w, idx, depth);
            }
        }
    }
    // `cursor` starts past the array slots that hold keys 1..=n, which the
    // array items below already cover.
    let mut cursor = 0u32;
    // SAFETY: `idx` is a table.
    let n = unsafe { lua_rawborder(l, idx, &mut cursor) };
    w.table_begin(n as usize);
    let mut k = Peek::new();
    let mut v = Peek::new();
    // Scalars are described without being pushed (strings stay valid: the
    // table holds them, and they are written out before any Lua code can run).
    // Lua code run by a nested `__pairs` may change this table: the raw
    // reads and lua_nextslot check their bounds on every call (a changed
    // table may be walked oddly, never out of bounds).
    for i in 1..=n {
        // SAFETY: `idx` is a table; a raw get of any key is in bounds; a
        // non-scalar is pushed (popped below), a scalar packed at once.
        unsafe {
            if lua_rawgetipeek(l, idx, i as lua_Integer, &mut v) == 0 {
                pack_value(l, w, 0, &v, depth)?;
            } else {
                let r = pack_value(l, w, -1, &v, depth);
                lua_pop(l, 1);
                r?;
            }
        }
    }
    loop {
        // SAFETY: `idx` is a table and the stack has room for the pair
        // (checked above).
        let slot = unsafe { lua_nextslot(l, idx, &mut cursor, &mut k, &mut v) };
        match slot {
            0 => break,
            1 => {
                if !(k.ty == LUA_TNUMBER && k.isint != 0 && k.i > 0 && (k.i as u64) <= n) {
                    // SAFETY: both are scalars of the table, packed before
                    // any Lua code runs.
                    unsafe {
                        pack_value(l, w, 0, &k, depth)?;
                        pack_value(l, w, 0, &v, depth)?;
                    }
                }
            }
            _ => {
                if k.ty == LUA_TNUMBER && k.isint != 0 && k.i > 0 && (k.i as u64) <= n {
                    // SAFETY: drops the pushed pair.
                    unsafe { lua_pop(l, 2) };
                    continue;
                }
                // SAFETY: the pair is pushed at -2 and -1, popped after;
                // `r` (a Result) is plain data across the pop.
                unsafe {
                    let r = pack_value(l, w, -2, &k, depth)
                        .and_then(|_| pack_value(l, w, -1, &v, depth));
                    lua_pop(l, 2);
                    r?;
                }
            }
        }
    }
    w.table_end();
    Ok(())
}

/// A table with `__pairs` (the metamethod is on the stack top): array size 0,
/// then every pair its iterator yields.
///
/// # Safety
/// As [`pack_table`], with the `__pairs` metamethod on the top.
unsafe fn pack_proxy(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    depth: usize,
) -> Result<(), Box<PackError>> {
    w.table_begin(0);
    // SAFETY: the metamethod is on the top (contract) and the stack has the
    // room pack_table checked; the calls run Lua code that may raise, with
    // nothing alive here that has a destructor (module doc). Every path
    // pops what it pushed.
    unsafe {
        lua_pushvalue(l, idx);
        lua_call(l, 1, 3); // next, t, k
        loop {
            lua_pushvalue(l, -3);
            lua_pushvalue(l, -3);
            lua_pushvalue(l, -3);
            lua_call(l, 2, 2); // k, v
            if lua_type(l, -2) == LUA_TNIL {
                lua_pop(l, 5); // next, t, k and the nil pair
                break;
            }
            let r = pack_at(l, w, -2, depth).and_then(|_| pack_at(l, w, -1, depth));
            if r.is_err() {
                lua_pop(l, 5);
                return r;
            }
            lua_pop(l, 1);
            lua_replace(l, -2); // the key becomes the control value
        }
    }
    w.table_end();
    Ok(())
}

/// Pushes every value of `input`; returns how many. On a decode error the stack
/// holds partial values the caller discards.
/// Unpack failures travel boxed: one machine word through the recursion.
type Failure = Box<DecodeError>;

fn fail(e: DecodeError) -> Failure {
    Box::new(e)
}

///
/// # Safety
/// `l` is a live state; `input` stays valid during the call. May raise (out
/// of memory, stack overflow): the caller keeps nothing with a destructor
/// alive.
pub unsafe fn unpack_all(l: State, input: &[u8]) -> Result<c_int, String> {
    let mut r = SeriReader::new(input);
    let mut n = 0;
    while let Some(item) = r.next_item().map_err(|e| e.to_string())? {
        // SAFETY: `l` is live; the check raises with only references alive;
        // push_item gets the room for its one value.
        unsafe {
            luaL_checkstack(l, LUA_MINSTACK, std::ptr::null());
            push_item(l, &mut r, item, 0).map_err(|e| e.to_string())?;
        }
        n += 1;
    }
    Ok(n)
}

/// A NaN key is refused once its value has been read, as the reference
/// does (it fails in `lua_rawset`): a broken value after it is reported as
/// the stream error, not as the NaN key.
fn refuse_nan_key(k: Item<'_>) -> Result<(), Failure> {
    match k {
        Item::Real(f) if f.is_nan() => Err(fail(DecodeError::NanKey)),
        _ => Ok(()),
    }
}

/// Tables with at most this many array items and pairs are built at their final
/// size (items gathered on the stack first), which spares Lua's rehashing.
const SMALL_TABLE: i32 = 64;

/// Reads the key/value pairs of a table (up to the nil key) into the table on
/// the stack top.
///
/// # Safety
/// As [`unpack_all`], with a table on the top and LUA_MINSTACK free slots.
unsafe fn push_pairs_into(l: State, r: &mut SeriReader<'_>, depth: usize) -> Result<(), Failure> {
    loop {
        let k = r.read_inlined().map_err(fail)?;
        if k.is_nil() {
            return Ok(());
        }
        // SAFETY: each push_item pushes one value into the free slots (a
        // nested table checks its own room); the key is neither nil nor NaN
        // (refused before the rawset), as lua_rawset needs; the table is at -3.
        unsafe {
            push_item(l, r, k, depth + 1)?;
            let v = r.read_inlined().map_err(fail)?;
            push_item(l, r, v, depth + 1)?;
            refuse_nan_key(k)?;
            lua_rawset(l, -3);
        }
    }
}

/// A table with `n <= SMALL_TABLE` array items: values and up to SMALL_TABLE
/// pairs go on the stack, then one `lua_buildtable` makes the table at its
/// exact size from them.
///
/// # Safety
/// As [`unpack_all`]; `0 <= n <= SMALL_TABLE`.
unsafe fn push_small_table(
    l: State,
    r: &mut SeriReader<'_>,
    n: i32,
    depth: usize,
) -> Result<(), Failure> {
    // SAFETY: the check makes room for every value and pair gathered below
    // (it raises with only references alive).
    unsafe { luaL_checkstack(l, n + 2 * SMALL_TABLE + LUA_MINSTACK, std::ptr::null()) };
    for _ in 0..n {
        let v = r.read_inlined().map_err(fail)?;
        // SAFETY: pushes one value into the room made above.
        unsafe { push_item(l, r, v, depth + 1) }?;
    }
    let mut pairs = 0;
    let mut more = false;
    loop {
        let k = r.read_inlined().map_err(fail)?;
        if k.is_nil() {
            break;
        }
        // SAFETY: as above.
        unsafe { push_item(l, r, k, depth + 1) }?;
        let v = r.read_inlined().map_err(fail)?;
        // SAFETY: as above.
        unsafe { push_item(l, r, v, depth + 1) }?;
        refuse_nan_key(k)?;
        pairs += 1;
        if pairs == SMALL_TABLE {
            more = true;
            break;
        }
    }
    // SAFETY: exactly `n` values and `pairs` pairs were pushed above, no
    // key nil (the end mark) or NaN (refused), as lua_buildtable needs; it
    // leaves the table on the top, with LUA_MINSTACK free slots for the rest.
    unsafe {
        lua_buildtable(l, n, pairs);
        if more {
            push_pairs_into(l, r, depth)?;
        }
    }
    Ok(())
}

/// `depth` bounds the recursion: the packer never nests deeper than 32, so a
/// stream nested past [`MAX_DECODE_DEPTH`] is hostile and refused.
///
/// # Safety
/// As [`unpack_all`], with a free slot. Pushes exactly one value on success.
unsafe fn push_item(
    l: State,
    r: &mut SeriReader<'_>,
    item: Item<'_>,
    depth: usize,
) -> Result<(), Failure> {
    // SAFETY: each arm pushes one value into the free slot (contract); a
    // table makes its own room first; a raise finds only references and
    // plain data alive. A light userdata is only a value: whoever uses it
    // as a pointer checks it (skynet.core's own blocks).
    unsafe {
        match item {
            Item::Nil => lua_pushnil(l),
            Item::Boolean(b) => lua_pushboolean(l, b as c_int),
            Item::Integer(i) => lua_pushinteger(l, i),
            Item::Real(f) => lua_pushnumber(l, f),
            Item::Pointer(p) => lua_pushlightuserdata(l, p as usize as *mut std::ffi::c_void),
            Item::String(s) => push_bytes(l, s),
            Item::Table { array_len } => {
                if depth >= MAX_DECODE_DEPTH {
                    return Err(fail(DecodeError::TooDeep {
                        limit: MAX_DECODE_DEPTH,
                    }));
                }
                let n = array_len.max(0);
                if n <= SMALL_TABLE {
                    push_small_table(l, r, n, depth)?;
                } else {
                    luaL_checkstack(l, LUA_MINSTACK, std::ptr::null());
                    // Each item takes at least one byte: a larger declared size is a
                    // lie that must not make us allocate.
                    lua_createtable(l, n.min(r.remaining() as i32), 0);
                    for i in 1..=n {
                        let v = r.read_inlined().map_err(fail)?;
                        push_item(l, r, v, depth + 1)?;
                        lua_rawseti(l, -2, i as lua_Integer);
                    }
                    push_pairs_into(l, r, depth)?;
                }
            }
        }
    }
    Ok(())
}
