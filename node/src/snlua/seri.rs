//! The Lua side of skynet's pack format: walks Lua values into a
//! [`SeriWriter`] and pushes the tokens of a [`SeriReader`] back as Lua values,
//! with lua-seri's rules (raw border for arrays, `__pairs` proxies, depth 32,
//! integer keys inside the border skipped in the hash part).

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
pub unsafe fn pack_args(
    l: State,
    from: c_int,
    out: &mut Vec<u8>,
    top_pointer: &mut dyn FnMut(usize) -> usize,
) -> Result<(), Box<PackError>> {
    let top = lua_gettop(l);
    let mut w = SeriWriter::new(out);
    let mut v = Peek::new();
    for i in from..=top {
        lua_peek(l, i, &mut v);
        if v.ty == LUA_TLIGHTUSERDATA {
            v.p = top_pointer(v.p as usize) as *const c_void;
        }
        pack_value(l, &mut w, i, &v, 0)?;
    }
    Ok(())
}

/// Packs the value `v` describes; `idx` is its stack position when it has one
/// (tables and unsupported types always do; 0 for a scalar not pushed).
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
            let s = std::slice::from_raw_parts(v.p as *const u8, v.len);
            w.string(s).map_err(Box::new)?;
        }
        LUA_TLIGHTUSERDATA => w.pointer(v.p as usize as u64),
        LUA_TTABLE => {
            let idx = lua_absindex(l, idx);
            pack_table(l, w, idx, depth + 1)?;
        }
        _ => {
            return Err(Box::new(PackError::Unsupported(
                type_name(l, idx).to_string(),
            )))
        }
    }
    Ok(())
}

/// The value at `idx`, described by a fresh peek.
#[inline]
unsafe fn pack_at(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    depth: usize,
) -> Result<(), Box<PackError>> {
    let mut v = Peek::new();
    lua_peek(l, idx, &mut v);
    pack_value(l, w, idx, &v, depth)
}

unsafe fn pack_table(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    depth: usize,
) -> Result<(), Box<PackError>> {
    luaL_checkstack(l, LUA_MINSTACK, std::ptr::null());
    // Most tables have no metatable: skip the `__pairs` lookup for them.
    if lua_getmetatable(l, idx) != 0 {
        lua_pop(l, 1);
        if luaL_getmetafield(l, idx, c"__pairs".as_ptr()) != LUA_TNIL {
            return pack_proxy(l, w, idx, depth);
        }
    }
    // `cursor` starts past the array slots that hold keys 1..=n, which the
    // array items below already cover.
    let mut cursor = 0u32;
    let n = lua_rawborder(l, idx, &mut cursor);
    w.table_begin(n as usize);
    let mut k = Peek::new();
    let mut v = Peek::new();
    // Scalars are described without being pushed (strings stay valid: the
    // table holds them, and they are written out before any Lua code can run).
    for i in 1..=n {
        if lua_rawgetipeek(l, idx, i as lua_Integer, &mut v) == 0 {
            pack_value(l, w, 0, &v, depth)?;
        } else {
            let r = pack_value(l, w, -1, &v, depth);
            lua_pop(l, 1);
            r?;
        }
    }
    loop {
        match lua_nextslot(l, idx, &mut cursor, &mut k, &mut v) {
            0 => break,
            1 => {
                if !(k.ty == LUA_TNUMBER && k.isint != 0 && k.i > 0 && (k.i as u64) <= n) {
                    pack_value(l, w, 0, &k, depth)?;
                    pack_value(l, w, 0, &v, depth)?;
                }
            }
            _ => {
                if k.ty == LUA_TNUMBER && k.isint != 0 && k.i > 0 && (k.i as u64) <= n {
                    lua_pop(l, 2);
                    continue;
                }
                let r =
                    pack_value(l, w, -2, &k, depth).and_then(|_| pack_value(l, w, -1, &v, depth));
                lua_pop(l, 2);
                r?;
            }
        }
    }
    w.table_end();
    Ok(())
}

/// A table with `__pairs` (the metamethod is on the stack top): array size 0,
/// then every pair its iterator yields.
unsafe fn pack_proxy(
    l: State,
    w: &mut SeriWriter<'_, Vec<u8>>,
    idx: c_int,
    depth: usize,
) -> Result<(), Box<PackError>> {
    w.table_begin(0);
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

pub unsafe fn unpack_all(l: State, input: &[u8]) -> Result<c_int, String> {
    let mut r = SeriReader::new(input);
    let mut n = 0;
    while let Some(item) = r.next_item().map_err(|e| e.to_string())? {
        luaL_checkstack(l, LUA_MINSTACK, std::ptr::null());
        push_item(l, &mut r, item, 0).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

/// Tables with at most this many array items and pairs are built at their final
/// size (items gathered on the stack first), which spares Lua's rehashing.
const SMALL_TABLE: i32 = 64;

/// Reads the key/value pairs of a table (up to the nil key) into the table on
/// the stack top.
unsafe fn push_pairs_into(l: State, r: &mut SeriReader<'_>, depth: usize) -> Result<(), Failure> {
    loop {
        let k = r.read_inlined().map_err(fail)?;
        match k {
            Item::Nil => return Ok(()),
            Item::Real(f) if f.is_nan() => return Err(fail(DecodeError::NanKey)),
            _ => {}
        }
        push_item(l, r, k, depth + 1)?;
        let v = r.read_inlined().map_err(fail)?;
        push_item(l, r, v, depth + 1)?;
        lua_rawset(l, -3);
    }
}

/// A table with `n <= SMALL_TABLE` array items: values and up to SMALL_TABLE
/// pairs go on the stack, then one `lua_buildtable` makes the table at its
/// exact size from them.
unsafe fn push_small_table(
    l: State,
    r: &mut SeriReader<'_>,
    n: i32,
    depth: usize,
) -> Result<(), Failure> {
    luaL_checkstack(l, n + 2 * SMALL_TABLE + LUA_MINSTACK, std::ptr::null());
    for _ in 0..n {
        let v = r.read_inlined().map_err(fail)?;
        push_item(l, r, v, depth + 1)?;
    }
    let mut pairs = 0;
    let mut more = false;
    loop {
        let k = r.read_inlined().map_err(fail)?;
        match k {
            Item::Nil => break,
            Item::Real(f) if f.is_nan() => return Err(fail(DecodeError::NanKey)),
            _ => {}
        }
        push_item(l, r, k, depth + 1)?;
        let v = r.read_inlined().map_err(fail)?;
        push_item(l, r, v, depth + 1)?;
        pairs += 1;
        if pairs == SMALL_TABLE {
            more = true;
            break;
        }
    }
    lua_buildtable(l, n, pairs);
    if more {
        push_pairs_into(l, r, depth)?;
    }
    Ok(())
}

/// `depth` bounds the recursion: the packer never nests deeper than 32, so a
/// stream nested past [`MAX_DECODE_DEPTH`] is hostile and refused.
unsafe fn push_item(
    l: State,
    r: &mut SeriReader<'_>,
    item: Item<'_>,
    depth: usize,
) -> Result<(), Failure> {
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
    Ok(())
}
