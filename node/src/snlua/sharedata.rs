//! `skynet.sharedata.core`: immutable data trees shared by every service of
//! the process without copying, with the Lua API of skynet's
//! lua-sharedata.c, plus native read-only proxies for our own library.
//!
//! An object ([`SdObject`]) is built once from a Lua table (by `sharedatad`)
//! and is then only read, from any worker thread, behind an `Arc`. Its tables
//! are flattened into a few arrays; string keys are found by a hash probe
//! (or a scan in small tables), integer keys `1..n` by index.
//!
//! Lua code names a table of an object with a lightuserdata *handle*: the
//! object's id in the high 32 bits, the table's index in the low 32 bits.
//! Handles travel in messages between `sharedatad` and its readers, so each
//! one that comes back from Lua is looked up in a process-wide table of live
//! objects by id: a forged handle, or one of an object already freed, is a
//! Lua error, never a read of freed memory. Ids are never reused. An object
//! found this way is pinned in the service until its current message ends
//! (`Shared::sd_pins`), so a native function may use it across Lua calls,
//! including calls that run finalizers.
//!
//! Lifetime: the service that made an object holds it until `delete` (or
//! until it exits); each box (skynet's corelib) and each proxy (ours) holds
//! the version it reads. The memory goes when the last holder lets go.
//! Independently, `incref`/`decref`/`getref` keep skynet's reference count,
//! which `sharedatad` uses to decide when to `delete` a retired version;
//! boxes and root proxies count themselves in it, as skynet's boxes do.
//!
//! Proxies (`proxy`, our corelib): read-only tables whose reads, length and
//! iteration run here (see the section "Native proxies" for their layout).
//! A proxy remembers what it has read, so a field read again is a plain Lua
//! table lookup. `proxyupdate` (from the monitor coroutine) moves a root
//! proxy and every child proxy it has made to the new version at once and
//! forgets what they had read; a child whose key is no longer a table there
//! is orphaned: reading it raises `The key [...] doesn't exist after
//! update`, as in skynet.
//!
//! Safety. Every `l*` function (and the metatables' functions) is a Lua C
//! function: Lua calls it with `l`, the running state, on the thread
//! running the service, and its upvalue 1 is the service's [`Shared`] (set
//! by `open_bound` and `open`), which outlives the state. Nothing with a
//! destructor is alive across a call that may raise (a Lua error is a
//! longjmp). Lua code may run inside any Lua call that allocates (a GC step
//! runs finalizers, which may call these functions on the same proxy or
//! box): an object is used across such a call only by a reference that
//! lasts until the message ends, because it came from [`lookup`] (pinned),
//! or from a node, whose versions are only ever replaced by moving them
//! into the service's pins ([`keep`]). Nodes and boxes are reached through
//! raw pointers into their userdata, which stays on the stack meanwhile;
//! no Rust reference into one is used across a Lua call.

use super::lua::*;
use super::{shared, Shared};
use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Weak};

// Handles pack an id and a table index into a pointer-sized lightuserdata.
const _: () = assert!(std::mem::size_of::<usize>() == 8);

/// Tables nested deeper than this are refused by `new`.
pub const MAX_DEPTH: usize = 256;

/// Tables with at most this many hash entries are scanned, not hashed.
const LINEAR_MAX: usize = 8;

// ---------------------------------------------------------------------------
// The tree

/// A string in the object's string pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    off: u32,
    len: u32,
}

/// A value of a shared table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(Span),
    /// Index of a table of the same object.
    Table(u32),
}

#[derive(Clone, Copy, Debug)]
enum Key {
    Int(i64),
    Str(Span),
}

/// A key as a reader asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef<'a> {
    Int(i64),
    Str(&'a [u8]),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Key,
    /// A string key's first 8 bytes (zero-padded): most keys compare here.
    word: u64,
    value: Value,
}

/// The first 8 bytes of `b`, zero-padded, as [`Entry::word`] keeps them.
#[inline]
fn word_of(b: &[u8]) -> u64 {
    let mut w = 0u64;
    for (i, c) in b.iter().take(8).enumerate() {
        w |= (*c as u64) << (8 * i);
    }
    w
}

/// Where one table's parts lie in the object's arrays.
#[derive(Clone, Copy, Debug, Default)]
struct TableHdr {
    arr_off: u32,
    arr_len: u32,
    ent_off: u32,
    ent_len: u32,
    slot_off: u32,
    /// Probe mask of the slot part; 0 when the entries are scanned.
    slot_mask: u32,
}

/// The reference count lives on its own cache line: readers on other threads
/// only read the rest of the header.
#[repr(align(64))]
struct Padded(AtomicI64);

/// One immutable data tree (one version of one name).
pub struct SdObject {
    id: u32,
    tables: Box<[TableHdr]>,
    values: Box<[Value]>,
    entries: Box<[Entry]>,
    /// Open-addressing slots: entry index + 1, 0 for empty.
    slots: Box<[u32]>,
    strings: Box<[u8]>,
    bytes: usize,
    dirty: AtomicBool,
    refs: Padded,
}

fn hash_word(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

fn hash_bytes(b: &[u8]) -> u32 {
    let mut h = hash_word(0x2545_f491_4f6c_dd1d, b.len() as u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = hash_word(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = hash_word(h, u64::from_le_bytes(w));
    }
    (h ^ (h >> 32)) as u32
}

fn hash_int(i: i64) -> u32 {
    let h = hash_word(0x1234_5678_9abc_def1, i as u64);
    (h ^ (h >> 32)) as u32
}

/// A key as `nextkey` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOut<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl SdObject {
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release)
    }

    /// skynet's reference count (see the module doc).
    pub fn refs(&self) -> i64 {
        self.refs.0.load(Ordering::Acquire)
    }

    pub fn incref(&self) -> i64 {
        self.refs.0.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn decref(&self) -> i64 {
        self.refs.0.fetch_sub(1, Ordering::AcqRel) - 1
    }

    pub fn str(&self, s: Span) -> &[u8] {
        let a = s.off as usize;
        &self.strings[a..a + s.len as usize]
    }

    fn hdr(&self, t: u32) -> &TableHdr {
        &self.tables[t as usize]
    }

    fn array(&self, h: &TableHdr) -> &[Value] {
        let a = h.arr_off as usize;
        &self.values[a..a + h.arr_len as usize]
    }

    fn ents(&self, h: &TableHdr) -> &[Entry] {
        let a = h.ent_off as usize;
        &self.entries[a..a + h.ent_len as usize]
    }

    /// `e` has the key `want` (whose first 8 bytes are `word`).
    #[inline]
    fn key_is(&self, e: &Entry, want: KeyRef<'_>, word: u64) -> bool {
        match (e.key, want) {
            (Key::Int(a), KeyRef::Int(b)) => a == b,
            (Key::Str(s), KeyRef::Str(b)) => {
                s.len as usize == b.len()
                    && e.word == word
                    && (b.len() <= 8 || self.str(s)[8..] == b[8..])
            }
            _ => false,
        }
    }

    /// The position of `k` among the hash entries of table `h`.
    fn find(&self, h: &TableHdr, k: KeyRef<'_>) -> Option<usize> {
        let ents = self.ents(h);
        let word = match k {
            KeyRef::Int(_) => 0,
            KeyRef::Str(b) => word_of(b),
        };
        if h.slot_mask == 0 {
            return ents.iter().position(|e| self.key_is(e, k, word));
        }
        let hash = match k {
            KeyRef::Int(i) => hash_int(i),
            KeyRef::Str(b) => hash_bytes(b),
        };
        let base = h.slot_off as usize;
        let mut i = hash & h.slot_mask;
        loop {
            let s = self.slots[base + i as usize];
            if s == 0 {
                return None;
            }
            let e = &ents[s as usize - 1];
            if self.key_is(e, k, word) {
                return Some(s as usize - 1);
            }
            i = (i + 1) & h.slot_mask;
        }
    }

    /// `t[k]` of table `t` (None where skynet's index returns nothing).
    pub fn get(&self, t: u32, k: KeyRef<'_>) -> Option<Value> {
        let h = self.hdr(t);
        if let KeyRef::Int(i) = k {
            if i >= 1 && i <= h.arr_len as i64 {
                return Some(self.array(h)[i as usize - 1]);
            }
        }
        self.find(h, k).map(|i| self.ents(h)[i].value)
    }

    fn key_out(&self, k: &Key) -> KeyOut<'_> {
        match *k {
            Key::Int(i) => KeyOut::Int(i),
            Key::Str(s) => KeyOut::Str(self.str(s)),
        }
    }

    /// The key after `after` in table `t` (array part first, then the hash
    /// entries: integers ascending, then strings in byte order). A key that
    /// the table lacks ends the walk, as in skynet.
    pub fn next_key(&self, t: u32, after: Option<KeyRef<'_>>) -> Option<KeyOut<'_>> {
        let h = self.hdr(t);
        let arr = self.array(h);
        let ents = self.ents(h);
        let from_array = match after {
            None => Some(0),
            Some(KeyRef::Int(i)) if i >= 1 && i <= h.arr_len as i64 => Some(i as usize),
            _ => None,
        };
        if let Some(start) = from_array {
            if let Some(i) = arr[start..].iter().position(|v| *v != Value::Nil) {
                return Some(KeyOut::Int((start + i + 1) as i64));
            }
            return ents.first().map(|e| self.key_out(&e.key));
        }
        let i = self.find(h, after?)?;
        ents.get(i + 1).map(|e| self.key_out(&e.key))
    }

    /// Size of the array part (`#t`, skynet's `len`).
    pub fn len(&self, t: u32) -> usize {
        self.hdr(t).arr_len as usize
    }

    /// Number of hash entries (skynet's `hashlen`).
    pub fn hash_len(&self, t: u32) -> usize {
        self.hdr(t).ent_len as usize
    }

    /// The handle Lua sees for table `t`.
    pub fn handle(&self, t: u32) -> usize {
        ((self.id as usize) << 32) | t as usize
    }
}

impl Drop for SdObject {
    fn drop(&mut self) {
        let r = &*REGISTRY;
        r.map.write().remove(&self.id);
        r.live.fetch_sub(1, Ordering::AcqRel);
        r.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

// ---------------------------------------------------------------------------
// Live objects

struct Registry {
    map: RwLock<HashMap<u32, Weak<SdObject>>>,
    next_id: AtomicU64,
    live: AtomicUsize,
    bytes: AtomicUsize,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    map: RwLock::new(HashMap::new()),
    next_id: AtomicU64::new(1),
    live: AtomicUsize::new(0),
    bytes: AtomicUsize::new(0),
});

/// The live object with this id.
pub fn find(id: u32) -> Option<Arc<SdObject>> {
    REGISTRY.map.read().get(&id).and_then(Weak::upgrade)
}

/// Objects alive in the process, and the bytes they take.
pub fn live_stats() -> (usize, usize) {
    let r = &*REGISTRY;
    (
        r.live.load(Ordering::Acquire),
        r.bytes.load(Ordering::Acquire),
    )
}

/// Splits a handle into (object id, table index).
fn split(h: usize) -> (u32, u32) {
    ((h >> 32) as u32, h as u32)
}

// ---------------------------------------------------------------------------
// Building an object from a Lua table

/// Why `new` refused a table: the problem, and the keys leading to it
/// (innermost first).
#[derive(Debug)]
pub struct BuildError {
    what: String,
    path: Vec<String>,
}

impl BuildError {
    fn new(what: String) -> Self {
        BuildError {
            what,
            path: Vec::new(),
        }
    }

    fn at(mut self, key: String) -> Self {
        self.path.push(key);
        self
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        if !self.path.is_empty() {
            f.write_str(" at ")?;
            // A deep path shows its outer keys only.
            const SHOWN: usize = 16;
            for (i, k) in self.path.iter().rev().take(SHOWN).enumerate() {
                if k.starts_with('[') || i == 0 {
                    f.write_str(k)?;
                } else {
                    write!(f, ".{k}")?;
                }
            }
            if self.path.len() > SHOWN {
                write!(f, "... ({} keys deep)", self.path.len())?;
            }
        }
        Ok(())
    }
}

fn int_key_text(i: i64) -> String {
    format!("[{i}]")
}

/// Builds the tree of the Lua table at `idx`. Only Lua API calls that
/// cannot raise an error or run Lua code are made (raw reads of tables and
/// strings), so Rust values may live across them.
struct Builder<'a> {
    l: State,
    tables: Vec<TableHdr>,
    values: Vec<Value>,
    entries: Vec<Entry>,
    slots: Vec<u32>,
    strings: Vec<u8>,
    interned: HashMap<&'a [u8], Span>,
    /// Lua tables already converted (a table met twice is shared).
    done: HashMap<usize, u32>,
    /// Lua tables on the path being converted (a cycle is refused).
    active: HashSet<usize>,
}

/// The parts of a new object, before it gets an id.
pub struct Tree {
    tables: Vec<TableHdr>,
    values: Vec<Value>,
    entries: Vec<Entry>,
    slots: Vec<u32>,
    strings: Vec<u8>,
}

fn too_large() -> BuildError {
    BuildError::new("the data is too large for one sharedata object".into())
}

fn to_u32(n: usize) -> Result<u32, BuildError> {
    u32::try_from(n).map_err(|_| too_large())
}

impl<'a> Builder<'a> {
    /// # Safety
    /// The value at `idx` is a string held (as a key or a value) by a table
    /// being converted (see [`build`]).
    unsafe fn intern(&mut self, idx: c_int) -> Result<Span, BuildError> {
        let mut len = 0usize;
        // SAFETY: a string (contract): nothing is converted or allocated.
        let p = unsafe { lua_tolstring(self.l, idx, &mut len) };
        // SAFETY: the string is held by a table being converted, which is
        // reachable from the argument for the whole build, and no Lua code
        // runs meanwhile.
        let b: &'a [u8] = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
        if let Some(s) = self.interned.get(b) {
            return Ok(*s);
        }
        let s = Span {
            off: to_u32(self.strings.len())?,
            len: to_u32(len)?,
        };
        to_u32(self.strings.len() + len)?;
        self.strings.extend_from_slice(b);
        self.interned.insert(b, s);
        Ok(s)
    }

    /// # Safety
    /// `idx` is a slot of the state being converted (see [`build`]) holding a
    /// value of a table being converted.
    unsafe fn value(&mut self, idx: c_int) -> Result<Value, BuildError> {
        // SAFETY: reads of the slot `idx` of the state being converted (none
        // converts, allocates or raises); a string or table is handed on, held by
        // the table that `idx` was read from.
        unsafe {
            let l = self.l;
            Ok(match lua_type(l, idx) {
                LUA_TNIL => Value::Nil,
                LUA_TBOOLEAN => Value::Bool(lua_toboolean(l, idx) != 0),
                LUA_TNUMBER => {
                    if lua_isinteger(l, idx) != 0 {
                        Value::Int(lua_tointegerx(l, idx, std::ptr::null_mut()))
                    } else {
                        Value::Real(lua_tonumberx(l, idx, std::ptr::null_mut()))
                    }
                }
                LUA_TSTRING => Value::Str(self.intern(idx)?),
                LUA_TTABLE => Value::Table(self.table(idx)?),
                _ => {
                    return Err(BuildError::new(format!(
                        "unsupported value type {}",
                        type_name(l, idx)
                    )))
                }
            })
        }
    }

    /// # Safety
    /// `idx` is an absolute index of a table of the state being converted (see
    /// [`build`]).
    unsafe fn table(&mut self, idx: c_int) -> Result<u32, BuildError> {
        // SAFETY: raw reads only (lua_rawlen, lua_rawgeti, lua_next over a table
        // whose keys are not written meanwhile) into the slots checked here for
        // this level (lua_checkstack reports a failure instead of raising): none
        // raises or runs Lua code, so the Rust values alive across them are safe.
        // Values read are handed to value/intern, held by this table.
        unsafe {
            let l = self.l;
            let p = lua_topointer(l, idx) as usize;
            if let Some(&t) = self.done.get(&p) {
                return Ok(t);
            }
            if self.active.contains(&p) {
                return Err(BuildError::new("a table contains itself".into()));
            }
            if self.active.len() >= MAX_DEPTH {
                return Err(BuildError::new(format!(
                    "tables nested deeper than {MAX_DEPTH}"
                )));
            }
            if lua_checkstack(l, 4) == 0 {
                return Err(BuildError::new("out of Lua stack".into()));
            }
            self.active.insert(p);
            let me = to_u32(self.tables.len())?;
            self.tables.push(TableHdr::default());
            let n = lua_rawlen(l, idx) as usize;
            to_u32(n)?;
            let mut array = Vec::with_capacity(n);
            for i in 1..=n {
                lua_rawgeti(l, idx, i as lua_Integer);
                let v = self.value(lua_gettop(l));
                lua_pop(l, 1);
                array.push(v.map_err(|e| e.at(int_key_text(i as i64)))?);
            }
            let mut ents: Vec<Entry> = Vec::new();
            lua_pushnil(l);
            while lua_next(l, idx) != 0 {
                let key = match lua_type(l, -2) {
                    LUA_TNUMBER if lua_isinteger(l, -2) != 0 => {
                        let k = lua_tointegerx(l, -2, std::ptr::null_mut());
                        if k >= 1 && k as u64 <= n as u64 {
                            lua_pop(l, 1);
                            continue;
                        }
                        Key::Int(k)
                    }
                    LUA_TNUMBER => {
                        let f = lua_tonumberx(l, -2, std::ptr::null_mut());
                        return Err(BuildError::new(format!(
                            "invalid key {f} (keys must be integers or strings)"
                        )));
                    }
                    LUA_TSTRING => Key::Str(self.intern(-2)?),
                    _ => {
                        return Err(BuildError::new(format!(
                            "invalid key type {} (keys must be integers or strings)",
                            type_name(l, -2)
                        )))
                    }
                };
                let v = self.value(lua_gettop(l));
                lua_pop(l, 1);
                let value = v.map_err(|e| e.at(self.key_text(&key)))?;
                let word = match key {
                    Key::Int(_) => 0,
                    Key::Str(s) => word_of(self.span_bytes(s)),
                };
                ents.push(Entry { key, word, value });
            }
            let strings = &self.strings;
            let text = |s: &Span| &strings[s.off as usize..(s.off + s.len) as usize];
            ents.sort_by(|a, b| match (&a.key, &b.key) {
                (Key::Int(x), Key::Int(y)) => x.cmp(y),
                (Key::Int(_), Key::Str(_)) => std::cmp::Ordering::Less,
                (Key::Str(_), Key::Int(_)) => std::cmp::Ordering::Greater,
                (Key::Str(x), Key::Str(y)) => text(x).cmp(text(y)),
            });
            let mut hdr = TableHdr {
                arr_off: to_u32(self.values.len())?,
                arr_len: n as u32,
                ent_off: to_u32(self.entries.len())?,
                ent_len: to_u32(ents.len())?,
                slot_off: to_u32(self.slots.len())?,
                slot_mask: 0,
            };
            if ents.len() > LINEAR_MAX {
                let cap = (ents.len() * 2).next_power_of_two();
                let base = self.slots.len();
                to_u32(base + cap)?;
                self.slots.resize(base + cap, 0);
                let mask = cap - 1;
                for (i, e) in ents.iter().enumerate() {
                    let hash = match e.key {
                        Key::Int(i) => hash_int(i),
                        Key::Str(sp) => hash_bytes(self.span_bytes(sp)),
                    };
                    let mut s = hash as usize & mask;
                    while self.slots[base + s] != 0 {
                        s = (s + 1) & mask;
                    }
                    self.slots[base + s] = i as u32 + 1;
                }
                hdr.slot_mask = mask as u32;
            }
            to_u32(self.values.len() + array.len())?;
            to_u32(self.entries.len() + ents.len())?;
            self.values.extend_from_slice(&array);
            self.entries.extend_from_slice(&ents);
            self.tables[me as usize] = hdr;
            self.active.remove(&p);
            self.done.insert(p, me);
            Ok(me)
        }
    }

    fn span_bytes(&self, s: Span) -> &[u8] {
        &self.strings[s.off as usize..(s.off + s.len) as usize]
    }

    fn key_text(&self, k: &Key) -> String {
        match k {
            Key::Int(i) => int_key_text(*i),
            Key::Str(s) => String::from_utf8_lossy(self.span_bytes(*s)).into_owned(),
        }
    }
}

/// Converts the Lua table at `idx` (raw: metatables are ignored).
///
/// # Safety
/// `idx` is a table of the live state `l`, run by this thread.
pub unsafe fn build(l: State, idx: c_int) -> Result<Tree, BuildError> {
    // SAFETY: `idx` is a table of the live state `l` (contract); the Builder
    // makes only calls that neither raise nor run Lua code (see Builder), so
    // its strings stay held, and the stack is put back as it was.
    unsafe {
        let idx = lua_absindex(l, idx);
        let top = lua_gettop(l);
        let mut b = Builder {
            l,
            tables: Vec::new(),
            values: Vec::new(),
            entries: Vec::new(),
            slots: Vec::new(),
            strings: Vec::new(),
            interned: HashMap::new(),
            done: HashMap::new(),
            active: HashSet::new(),
        };
        let r = b.table(idx);
        lua_settop(l, top);
        r?;
        Ok(Tree {
            tables: b.tables,
            values: b.values,
            entries: b.entries,
            slots: b.slots,
            strings: b.strings,
        })
    }
}

impl SdObject {
    /// Makes `tree` a live object, findable by its id until it is dropped.
    pub fn create(tree: Tree) -> Result<Arc<SdObject>, String> {
        let r = &*REGISTRY;
        let id = r.next_id.fetch_add(1, Ordering::AcqRel);
        let id = u32::try_from(id).map_err(|_| "sharedata: object ids exhausted".to_string())?;
        use std::mem::size_of;
        let bytes = size_of::<SdObject>()
            + tree.tables.len() * size_of::<TableHdr>()
            + tree.values.len() * size_of::<Value>()
            + tree.entries.len() * size_of::<Entry>()
            + tree.slots.len() * size_of::<u32>()
            + tree.strings.len();
        let obj = Arc::new(SdObject {
            id,
            tables: tree.tables.into_boxed_slice(),
            values: tree.values.into_boxed_slice(),
            entries: tree.entries.into_boxed_slice(),
            slots: tree.slots.into_boxed_slice(),
            strings: tree.strings.into_boxed_slice(),
            bytes,
            dirty: AtomicBool::new(false),
            refs: Padded(AtomicI64::new(0)),
        });
        r.live.fetch_add(1, Ordering::AcqRel);
        r.bytes.fetch_add(bytes, Ordering::AcqRel);
        r.map.write().insert(id, Arc::downgrade(&obj));
        Ok(obj)
    }
}

// ---------------------------------------------------------------------------
// Lua glue: handles

/// A new `Arc` of an object known to be held by an `Arc` right now.
///
/// # Safety
/// `obj` must come from an `Arc<SdObject>` that is alive (every `SdObject`
/// is made by [`SdObject::create`]).
unsafe fn arc_of(obj: &SdObject) -> Arc<SdObject> {
    let p = obj as *const SdObject;
    // SAFETY: `p` is the pointer of a live Arc (contract): the count taken
    // here is owned by the Arc returned.
    unsafe {
        Arc::increment_strong_count(p);
        Arc::from_raw(p)
    }
}

/// Keeps `obj` alive until the service's current message ends, instead of
/// dropping it now: a native call up the stack may still read it.
///
/// # Safety
/// Called on the thread running the service whose `Shared` is `sh`, with
/// no other borrow of its `sd_pins` alive.
unsafe fn keep(sh: &Shared, obj: Arc<SdObject>) {
    // SAFETY: as the contract says; this borrow ends with the function,
    // which makes no Lua call.
    let pins = unsafe { &mut *sh.sd_pins.get() };
    if !pins.iter().any(|p| Arc::ptr_eq(p, &obj)) {
        pins.push(obj);
    }
}

/// The object and table named by the handle `h`, pinned in the service.
///
/// # Safety
/// As for [`keep`]; the reference must not be used after the message ends
/// ([`Shared::unpin_all`]).
unsafe fn lookup(sh: &Shared, h: usize) -> Option<(&SdObject, u32)> {
    let (id, t) = split(h);
    if id == 0 {
        return None;
    }
    // SAFETY: as for keep: the service's thread, no other borrow of its
    // pins; this one ends before the function returns, with no Lua call.
    let pins = unsafe { &mut *sh.sd_pins.get() };
    let p: *const SdObject = match pins.iter().rev().find(|o| o.id == id) {
        Some(o) => Arc::as_ptr(o),
        None => {
            let o = find(id)?;
            let p = Arc::as_ptr(&o);
            pins.push(o);
            p
        }
    };
    // SAFETY: the Arc stays in `sd_pins` until the message ends, and the
    // object never moves or changes (but for its atomics).
    let obj = unsafe { &*p };
    ((t as usize) < obj.tables.len()).then_some((obj, t))
}

/// The handle argument at `idx`; raises a Lua error naming `what` for
/// anything but a live object's handle. Runs no Lua code when it returns.
///
/// # Safety
/// `l` is the calling state of the service whose `Shared` is `sh`, on its
/// thread, with no borrow of its pins alive; nothing with a destructor is
/// alive in the caller (this may raise). As for [`lookup`], the reference
/// is not used after the message ends.
unsafe fn check_handle<'a>(
    l: State,
    sh: &'a Shared,
    idx: c_int,
    what: &str,
) -> (&'a SdObject, u32) {
    // SAFETY: `l` is the calling state; lua_type and lua_touserdata accept
    // any index; the error texts are moved into raise_here; lookup's
    // contract is ours.
    unsafe {
        if lua_type(l, idx) != LUA_TLIGHTUSERDATA {
            raise_here(
                l,
                format!("{what}: need a sharedata object, got {}", type_name(l, idx)),
            );
        }
        let h = lua_touserdata(l, idx) as usize;
        match lookup(sh, h) {
            Some(x) => x,
            None => raise_here(
                l,
                format!(
                    "{what}: invalid sharedata object {h:#x} (freed, or not a sharedata object)"
                ),
            ),
        }
    }
}

/// # Safety
/// `l` is a live state run by this thread, with a free slot.
unsafe fn push_handle(l: State, obj: &SdObject, t: u32) {
    // SAFETY: as the contract says; the push does not allocate.
    unsafe { lua_pushlightuserdata(l, obj.handle(t) as *mut c_void) };
}

/// Pushes a scalar value; a table as its handle. May run Lua code (a
/// string allocates).
///
/// # Safety
/// `l` is a live state run by this thread, with a free slot; `v` is a
/// value of `obj`.
unsafe fn push_raw_value(l: State, obj: &SdObject, v: Value) {
    // SAFETY: as the contract says; a string's bytes are copied by
    // lua_pushlstring before the GC step that may follow, so `obj` need
    // only live for the call, which its `&` guarantees.
    unsafe {
        match v {
            Value::Nil => lua_pushnil(l),
            Value::Bool(b) => lua_pushboolean(l, b as c_int),
            Value::Int(i) => lua_pushinteger(l, i),
            Value::Real(f) => lua_pushnumber(l, f),
            Value::Str(s) => push_bytes(l, obj.str(s)),
            Value::Table(t) => push_handle(l, obj, t),
        }
    }
}

/// Pushes a key. May run Lua code (a string allocates).
///
/// # Safety
/// `l` is a live state run by this thread, with a free slot.
unsafe fn push_key(l: State, k: KeyOut<'_>) {
    // SAFETY: as the contract says; a string's bytes are copied before
    // the GC step that may follow.
    unsafe {
        match k {
            KeyOut::Int(i) => lua_pushinteger(l, i),
            KeyOut::Str(s) => push_bytes(l, s),
        }
    }
}

/// What the vendored Lua's `lua_peek` reports about a value (`lua_Peek` in
/// vendor/lua-src/lua-5.5.1/lua.h): one call instead of several.
#[repr(C)]
struct Peek {
    ty: c_int,
    isint: c_int,
    i: lua_Integer,
    n: lua_Number,
    p: *const c_void,
    len: usize,
}

extern "C-unwind" {
    fn lua_peek(l: State, idx: c_int, out: *mut Peek);
}

/// A key argument the way a Lua table reads it: integers (and floats with
/// an integral value) and strings; anything else names no entry. A string
/// stays valid while it is on the stack.
///
/// # Safety
/// `l` is a live state run by this thread; a string key is used only while
/// the value at `idx` stays on the stack (`'a`).
#[inline]
unsafe fn table_key<'a>(l: State, idx: c_int) -> Option<KeyRef<'a>> {
    let mut v = Peek {
        ty: LUA_TNIL,
        isint: 0,
        i: 0,
        n: 0.0,
        p: std::ptr::null(),
        len: 0,
    };
    // SAFETY: lua_peek (vendored lapi.c) only describes the slot: no
    // conversion, allocation or error.
    unsafe { lua_peek(l, idx, &mut v) };
    match v.ty {
        // SAFETY: for a string, `p` and `len` are its bytes, valid while it
        // is on the stack (contract).
        LUA_TSTRING => Some(KeyRef::Str(unsafe {
            std::slice::from_raw_parts(v.p as *const u8, v.len)
        })),
        LUA_TNUMBER if v.isint != 0 => Some(KeyRef::Int(v.i)),
        LUA_TNUMBER => {
            let f = v.n;
            // -2^63 <= f < 2^63 and integral: the integer Lua reads it as
            (f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f))
                .then_some(KeyRef::Int(f as i64))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Registry keys of this module's metatables and state

static HOST_KEY: u8 = 0;
static HOST_MT: u8 = 0;
static CTRL_MT: u8 = 0;
static NODE_MT: u8 = 0;
/// The proxy metatable's template (`__newindex`, `__len`, `__pairs`).
static PROXY_MT: u8 = 0;
static INNER_MT: u8 = 0;
/// Registry key of [`NODE_FIELD`] as a Lua string.
static NODE_KEY: u8 = 0;

/// The field of a proxy's inner table (and of its metatable) that holds its
/// node. A short string key is the fastest raw lookup; no data key is
/// expected to look like it (a data key equal to it reads as the node).
const NODE_FIELD: &[u8] = b"\xff<sharedata node>\xff";

fn key(k: &'static u8) -> *const c_void {
    k as *const u8 as *const c_void
}

/// True if the userdata at `idx` has the metatable registered under `mt`.
/// # Safety
/// `l` is a live state run by this thread, with 2 free slots.
unsafe fn has_metatable(l: State, idx: c_int, mt: &'static u8) -> bool {
    // SAFETY: `l` is live (contract); lua_type and lua_getmetatable accept any
    // index, and `idx` is used before the two slots pushed (popped again); no
    // call allocates or raises.
    unsafe {
        if lua_type(l, idx) != LUA_TUSERDATA || lua_getmetatable(l, idx) == 0 {
            return false;
        }
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(mt));
        let same = lua_rawequal(l, -1, -2) != 0;
        lua_pop(l, 2);
        same
    }
}

// ---------------------------------------------------------------------------
// Host functions

/// The objects a service made and has not deleted.
struct Host {
    objects: Option<HashMap<u32, Arc<SdObject>>>,
}

/// This state's host table (made on first use). The pointer stays valid for
/// the state's life: the registry holds the userdata.
///
/// # Safety
/// `l` is the calling state, with 2 free slots, and nothing with a
/// destructor is alive in the caller (making the host may raise, and may
/// run Lua code).
unsafe fn host(l: State) -> *mut Host {
    // SAFETY: `l` is live (contract). A userdata under HOST_KEY is a Host:
    // only this function stores one there. A new one is a fresh block of
    // the size asked (aligned for Host: see the asserts by Node), written
    // before its metatable (with __gc) is set; the map is set after the
    // Lua calls. (Should a finalizer run by the allocation make a host too,
    // this one replaces it in the registry; that one's objects go with it.)
    unsafe {
        if lua_rawgetp(l, LUA_REGISTRYINDEX, key(&HOST_KEY)) == LUA_TUSERDATA {
            let p = lua_touserdata(l, -1) as *mut Host;
            lua_pop(l, 1);
            return p;
        }
        lua_pop(l, 1);
        let p = lua_newuserdatauv(l, std::mem::size_of::<Host>(), 0) as *mut Host;
        std::ptr::write(p, Host { objects: None });
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&HOST_MT));
        lua_setmetatable(l, -2);
        lua_rawsetp(l, LUA_REGISTRYINDEX, key(&HOST_KEY));
        (*p).objects = Some(HashMap::new());
        p
    }
}

unsafe extern "C-unwind" fn host_gc(l: State) -> c_int {
    // SAFETY: a userdata with the host metatable is a Host (see host); its
    // objects go now: natives that read one got it from lookup (pinned).
    unsafe {
        if has_metatable(l, 1, &HOST_MT) {
            let p = lua_touserdata(l, 1) as *mut Host;
            (*p).objects = None;
        }
        0
    }
}

/// `new(table)`: a new object; returns its root handle.
unsafe extern "C-unwind" fn lnew(l: State) -> c_int {
    // SAFETY: the check and host raise with nothing to drop; argument 1 is
    // a table of this state for build.
    let (h, obj) = unsafe {
        luaL_checktype(l, 1, LUA_TTABLE);
        let h = host(l);
        (h, build(l, 1))
    };
    let obj = match obj {
        Ok(tree) => SdObject::create(tree),
        Err(e) => Err(format!("new: {e}")),
    };
    let obj = match obj {
        Ok(o) => o,
        // SAFETY: nothing with a destructor is alive (the text is moved).
        Err(e) => unsafe { raise_here(l, e) },
    };
    let handle = obj.handle(0);
    // SAFETY: the host lives in the registry; no Lua call since host()
    // (build runs no Lua code), and the borrow ends with the insert.
    if let Some(m) = unsafe { (*h).objects.as_mut() } {
        m.insert(obj.id, obj);
    }
    // SAFETY: a push that does not allocate.
    unsafe { lua_pushlightuserdata(l, handle as *mut c_void) };
    1
}

/// `delete(obj)`: the service lets go of an object it made.
unsafe extern "C-unwind" fn ldelete(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // and host raise with nothing to drop. The host lives in the registry,
    // and its map is borrowed for the remove only, with no Lua call.
    let (id, held) = unsafe {
        let sh = shared(l);
        let (obj, _) = check_handle(l, sh, 1, "delete");
        let id = obj.id;
        let h = host(l);
        (id, (*h).objects.as_mut().and_then(|m| m.remove(&id)))
    };
    match held {
        // Still pinned until the message ends; freed then if nobody reads it.
        Some(o) => drop(o),
        // SAFETY: nothing with a destructor is alive (`held` is None).
        None => unsafe {
            raise_here(
                l,
                format!(
                    "delete: sharedata object {id} was not made by this service, or is deleted"
                ),
            )
        },
    }
    0
}

unsafe extern "C-unwind" fn lmarkdirty(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push (if any) does not allocate.
    unsafe {
        let (obj, _) = check_handle(l, shared(l), 1, "markdirty");
        obj.mark_dirty();
    }
    0
}

unsafe extern "C-unwind" fn lisdirty(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push (if any) does not allocate.
    unsafe {
        let (obj, _) = check_handle(l, shared(l), 1, "isdirty");
        lua_pushboolean(l, obj.is_dirty() as c_int);
    }
    1
}

unsafe extern "C-unwind" fn lgetref(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push (if any) does not allocate.
    unsafe {
        let (obj, _) = check_handle(l, shared(l), 1, "getref");
        lua_pushinteger(l, obj.refs());
    }
    1
}

unsafe extern "C-unwind" fn lincref(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push (if any) does not allocate.
    unsafe {
        let (obj, _) = check_handle(l, shared(l), 1, "incref");
        lua_pushinteger(l, obj.incref());
    }
    1
}

unsafe extern "C-unwind" fn ldecref(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push (if any) does not allocate.
    unsafe {
        let (obj, _) = check_handle(l, shared(l), 1, "decref");
        lua_pushinteger(l, obj.decref());
    }
    1
}

// ---------------------------------------------------------------------------
// skynet's client functions (used by skynet's corelib.lua)

/// The key argument of skynet's `index`/`nextkey`: integers, strings (and
/// numbers as strings, as luaL_checklstring takes them). `None`: a float
/// that is no integer.
///
/// # Safety
/// `l` is the calling state; nothing with a destructor is alive in the
/// caller (this may raise); a string key is used only while the argument
/// is on the stack. Runs no Lua code when it returns: numbers are read
/// here, so luaL_checklstring converts nothing.
unsafe fn skynet_key<'a>(l: State, idx: c_int) -> Option<KeyRef<'a>> {
    // SAFETY: `l` is the calling state; the number reads take the slot as
    // it is; check_bytes gets no number, so it converts nothing (anything
    // but a string raises, with nothing to drop).
    unsafe {
        if lua_type(l, idx) == LUA_TNUMBER {
            if lua_isinteger(l, idx) == 0 {
                return None;
            }
            return Some(KeyRef::Int(lua_tointegerx(l, idx, std::ptr::null_mut())));
        }
        Some(KeyRef::Str(check_bytes(l, idx)))
    }
}

unsafe extern "C-unwind" fn lindex(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the checks
    // raise with nothing to drop (no Lua code runs in them, so the key, a
    // string argument, and the pinned object stay valid); push_raw_value
    // gets a value of `obj` and the slot Lua gives a C function.
    unsafe {
        let (obj, t) = check_handle(l, shared(l), 1, "index");
        if lua_isnoneornil(l, 2) != 0 {
            return 0;
        }
        let Some(k) = skynet_key(l, 2) else {
            let f = lua_tonumberx(l, 2, std::ptr::null_mut());
            raise_here(l, format!("Invalid key {f:.6}"));
        };
        match obj.get(t, k) {
            Some(v) => {
                push_raw_value(l, obj, v);
                1
            }
            None => 0,
        }
    }
}

unsafe extern "C-unwind" fn lnextkey(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the checks
    // raise with nothing to drop and run no Lua code, so the key (a string
    // argument) and the object (pinned) stay valid; the key pushed borrows the
    // pinned object.
    unsafe {
        let (obj, t) = check_handle(l, shared(l), 1, "nextkey");
        let after = if lua_isnoneornil(l, 2) != 0 {
            None
        } else {
            match skynet_key(l, 2) {
                Some(k) => Some(k),
                None => return 0,
            }
        };
        match obj.next_key(t, after) {
            Some(k) => {
                push_key(l, k);
                1
            }
            None => 0,
        }
    }
}

unsafe extern "C-unwind" fn llen(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push does not allocate.
    unsafe {
        let (obj, t) = check_handle(l, shared(l), 1, "len");
        lua_pushinteger(l, obj.len(t) as lua_Integer);
        1
    }
}

unsafe extern "C-unwind" fn lhashlen(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the push does not allocate.
    unsafe {
        let (obj, t) = check_handle(l, shared(l), 1, "hashlen");
        lua_pushinteger(l, obj.hash_len(t) as lua_Integer);
        1
    }
}

/// skynet's box: holds one version for a reader (and counts in its refs);
/// `update` stages the next version, which `needupdate` hands back.
struct Ctrl {
    obj: Option<Arc<SdObject>>,
    root: usize,
    update: Option<Arc<SdObject>>,
    update_handle: usize,
}

/// The box at `idx`, or a Lua error. The pointer stays valid while the box
/// is on the stack.
///
/// # Safety
/// `l` is the calling state; nothing with a destructor is alive in the
/// caller (this may raise).
unsafe fn check_ctrl(l: State, idx: c_int, what: &str) -> *mut Ctrl {
    // SAFETY: `l` is the calling state; has_metatable takes 2 of the slots Lua
    // gives a C function; a userdata with the box metatable is a Ctrl (only lbox
    // sets it, after writing one); the text is moved into raise_here.
    unsafe {
        if !has_metatable(l, idx, &CTRL_MT) {
            raise_here(
                l,
                format!("{what}: need a sharedata box, got {}", type_name(l, idx)),
            );
        }
        lua_touserdata(l, idx) as *mut Ctrl
    }
}

unsafe extern "C-unwind" fn lbox(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop, and `obj` is pinned, so it outlives the
    // allocation (and any finalizer it runs) and is a live Arc for arc_of.
    // lua_newuserdatauv returns a fresh block of the size asked, aligned
    // for Ctrl (see the asserts by Node); the Arcs are set once the
    // metatable (whose __gc drops them) is in place, after the last Lua
    // call that may raise.
    unsafe {
        let sh = shared(l);
        let (obj, t) = check_handle(l, sh, 1, "box");
        let c = lua_newuserdatauv(l, std::mem::size_of::<Ctrl>(), 1) as *mut Ctrl;
        std::ptr::write(
            c,
            Ctrl {
                obj: None,
                root: 0,
                update: None,
                update_handle: 0,
            },
        );
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&CTRL_MT));
        lua_setmetatable(l, -2);
        obj.incref();
        (*c).obj = Some(arc_of(obj));
        (*c).root = obj.handle(t);
    }
    1
}

unsafe extern "C-unwind" fn ctrl_gc(l: State) -> c_int {
    // SAFETY: has_metatable takes 2 of the slots Lua gives a C function; a
    // userdata with the box metatable is a Ctrl (see check_ctrl). Its Arcs are
    // dropped here: no native reads an object through a box (they look the
    // handle up, pinned).
    unsafe {
        if has_metatable(l, 1, &CTRL_MT) {
            let c = lua_touserdata(l, 1) as *mut Ctrl;
            if let Some(o) = (*c).obj.take() {
                o.decref();
            }
            (*c).update = None;
        }
        0
    }
}

unsafe extern "C-unwind" fn lneedupdate(l: State) -> c_int {
    // SAFETY: check_ctrl raises with nothing to drop; the box stays at slot 1;
    // the pushes take 2 of the slots Lua gives a C function.
    unsafe {
        let c = check_ctrl(l, 1, "needupdate");
        if (*c).update.is_none() {
            return 0;
        }
        lua_pushlightuserdata(l, (*c).update_handle as *mut c_void);
        lua_getiuservalue(l, 1, 1);
        2
    }
}

unsafe extern "C-unwind" fn lupdate(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the checks raise
    // with nothing to drop and run no Lua code, so the box (at slot 1, `c` from
    // check_ctrl) is as checked, and `obj` is pinned (a live Arc for arc_of).
    // Setting the user value neither allocates nor raises; the staged version
    // replaced goes to the pins, as a node's.
    unsafe {
        let sh = shared(l);
        let c = check_ctrl(l, 1, "update");
        luaL_checktype(l, 2, LUA_TLIGHTUSERDATA);
        luaL_checktype(l, 3, LUA_TTABLE);
        let (obj, t) = check_handle(l, sh, 2, "update");
        if (*c).obj.is_none() {
            raise_here(l, "update: the box is released".to_string());
        }
        if obj.handle(t) == (*c).root {
            raise_here(l, "You should update a new object".to_string());
        }
        lua_settop(l, 3);
        lua_setiuservalue(l, 1, 1);
        if let Some(old) = (*c).update.replace(arc_of(obj)) {
            keep(sh, old);
        }
        (*c).update_handle = obj.handle(t);
        0
    }
}

// ---------------------------------------------------------------------------
// Native proxies (our corelib.lua)
//
// A proxy is three tables and a node: the proxy P that Lua code holds (always
// empty, so every write reaches `__newindex`), its own metatable M whose
// `__index` is the inner table I, and I, which holds what the proxy has read
// (child proxies and values, by key) and the node under NODE_FIELD. I's
// metatable (one per state) has the native `__index` that reads the shared
// tree on a miss. So a field read a second time is a plain table lookup.
// When the proxy moves to a new version, the walk empties every inner table
// of its tree (but for the child proxies it rebinds), so nothing read from
// the old version is seen again.

const NODE_MAGIC: u64 = 0x5348_4152_4544_4154; // "SHAREDAT"

/// The state of one proxy (see the module doc).
struct Node {
    magic: u64,
    /// The version read; None once orphaned or released.
    obj: Option<Arc<SdObject>>,
    table: u32,
    is_root: bool,
    /// The key vanished in an update.
    orphan: bool,
    /// A root proxy counts in its version's refs.
    counted: bool,
    /// Root only: the next version, staged by `proxyupdate`.
    pending: Option<Arc<SdObject>>,
    pending_table: u32,
}

/// User values of a node.
const UV_PARENT: c_int = 1; // the parent proxy (nil for a root)
const UV_KEY: c_int = 2; // the key in the parent (a root: its name)
const UV_INNER: c_int = 3; // the inner table
const UV_SELF: c_int = 4; // the proxy
const NODE_UVS: c_int = 4;

// Lua aligns userdata memory for its own types (8 bytes here); the native
// structs kept there need no more.
const _: () = assert!(std::mem::align_of::<Node>() <= 8);
const _: () = assert!(std::mem::align_of::<Ctrl>() <= 8);
const _: () = assert!(std::mem::align_of::<Host>() <= 8);

/// The node at stack index `idx`, if that is one: a userdata of a node's
/// size with the node metatable (which only `new_proxy` sets), as
/// luaL_checkudata tells its types. Any userdata can sit where a node is
/// looked for (Lua code can build a table like a proxy's), and the bytes of
/// other native userdata are not ours to read. Uses 2 stack slots.
///
/// # Safety
/// `l` is a live state run by this thread, with 2 free slots.
#[inline]
unsafe fn as_node(l: State, idx: c_int) -> Option<*mut Node> {
    // SAFETY: lua_rawlen and has_metatable only read the slot; a userdata of
    // a node's size with the node metatable is a Node that new_proxy wrote, so
    // its first field is initialized.
    unsafe {
        if lua_rawlen(l, idx) as usize != std::mem::size_of::<Node>()
            || !has_metatable(l, idx, &NODE_MT)
        {
            return None;
        }
        let n = lua_touserdata(l, idx) as *mut Node;
        (!n.is_null() && (*n).magic == NODE_MAGIC).then_some(n)
    }
}

/// Pushes the node of the proxy (or inner table) at `p` if it is one;
/// returns it (valid while it is on the stack). Runs no Lua code.
///
/// # Safety
/// `l` is the calling state; nothing with a destructor is alive in the
/// caller unless 6 free slots are known to be there (the check raises only
/// when the stack cannot grow).
unsafe fn try_node(l: State, p: c_int) -> Option<*mut Node> {
    // SAFETY: raw reads (lua_rawgetp, lua_getmetatable, lua_rawget) into the
    // 6 slots checked here, as_node taking 2 of them: none allocates, raises or
    // runs Lua code; every path leaves the stack as it was, plus the node.
    unsafe {
        if lua_type(l, p) != LUA_TTABLE {
            return None;
        }
        let p = lua_absindex(l, p);
        luaL_checkstack(l, 6, std::ptr::null());
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&NODE_KEY));
        // A proxy keeps its node in its metatable.
        if lua_getmetatable(l, p) != 0 {
            lua_pushvalue(l, -2);
            if lua_rawget(l, -2) == LUA_TUSERDATA {
                if let Some(n) = as_node(l, -1) {
                    lua_replace(l, -3);
                    lua_pop(l, 1);
                    return Some(n);
                }
            }
            lua_pop(l, 2);
        }
        // An inner table keeps it raw.
        if lua_rawget(l, p) == LUA_TUSERDATA {
            if let Some(n) = as_node(l, -1) {
                return Some(n);
            }
        }
        lua_pop(l, 1);
        None
    }
}

/// Pushes the node of the proxy at `p` (it stays on the stack, keeping the
/// node alive for the call); raises for anything but a proxy.
///
/// # Safety
/// `l` is the calling state; nothing with a destructor is alive in the
/// caller.
unsafe fn push_node(l: State, p: c_int, what: &str) -> *mut Node {
    // SAFETY: try_node's contract is ours; the text is moved into raise_here.
    unsafe {
        match try_node(l, p) {
            Some(n) => n,
            None => raise_here(
                l,
                format!("{what}: need a sharedata proxy, got {}", type_name(l, p)),
            ),
        }
    }
}

/// Creates a proxy and its node (no version yet); pushes both, the node on
/// top. Allocates, so it may raise and run Lua code.
///
/// # Safety
/// `l` is the calling state of a service that opened this module; nothing
/// with a destructor is alive in the caller.
unsafe fn new_proxy(l: State) -> *mut Node {
    // SAFETY: the 8 slots used are checked first; every index is a slot
    // pushed here (p the proxy, p + 1 the node, p + 2 the inner table, p + 3
    // its metatable) or a registry key holding what open made. The node is a
    // fresh block of the size asked (aligned: see the asserts above), written
    // before its metatable (whose __gc reads it) is set; its versions come
    // later, from the caller. A finalizer run by an allocation finds nothing of
    // ours half made, and nothing from Rust is alive; the node returned stays
    // on the stack.
    unsafe {
        luaL_checkstack(l, 8, std::ptr::null());
        lua_createtable(l, 0, 0);
        let p = lua_gettop(l);
        let n = lua_newuserdatauv(l, std::mem::size_of::<Node>(), NODE_UVS) as *mut Node;
        std::ptr::write(
            n,
            Node {
                magic: NODE_MAGIC,
                obj: None,
                table: 0,
                is_root: false,
                orphan: false,
                counted: false,
                pending: None,
                pending_table: 0,
            },
        );
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&NODE_MT));
        lua_setmetatable(l, p + 1);
        // the inner table
        lua_createtable(l, 0, 1);
        let inner = p + 2;
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&INNER_MT));
        lua_setmetatable(l, inner);
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&NODE_KEY));
        lua_pushvalue(l, p + 1);
        lua_rawset(l, inner);
        lua_pushvalue(l, inner);
        lua_setiuservalue(l, p + 1, UV_INNER);
        lua_pushvalue(l, p);
        lua_setiuservalue(l, p + 1, UV_SELF);
        // the proxy's metatable: __index is the inner table; the rest come from
        // the state's template
        lua_createtable(l, 0, 5);
        let mt = p + 3;
        lua_pushvalue(l, inner);
        lua_setfield(l, mt, c"__index".as_ptr());
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&PROXY_MT));
        for name in [c"__newindex", c"__len", c"__pairs"] {
            lua_getfield(l, -1, name.as_ptr());
            lua_setfield(l, mt, name.as_ptr());
        }
        lua_pop(l, 1);
        lua_rawgetp(l, LUA_REGISTRYINDEX, key(&NODE_KEY));
        lua_pushvalue(l, p + 1);
        lua_rawset(l, mt);
        lua_setmetatable(l, p);
        lua_settop(l, p + 1);
        n
    }
}

unsafe extern "C-unwind" fn node_gc(l: State) -> c_int {
    // SAFETY: a node-sized userdata with the node metatable is a Node (see
    // as_node); upvalue 1 is the service's Shared (open sets it). Its versions
    // go to the pins, not away: Lua code may call this __gc by hand, on a node
    // a native call below is reading.
    unsafe {
        if lua_type(l, 1) == LUA_TUSERDATA
            && lua_rawlen(l, 1) as usize == std::mem::size_of::<Node>()
            && has_metatable(l, 1, &NODE_MT)
        {
            let n = lua_touserdata(l, 1) as *mut Node;
            // Kept until the message ends rather than dropped: Lua code may call
            // this __gc by hand, on a node that a native call is reading.
            let sh = shared(l);
            if let Some(o) = (*n).obj.take() {
                if (*n).counted {
                    o.decref();
                }
                keep(sh, o);
            }
            if let Some(o) = (*n).pending.take() {
                o.decref();
                keep(sh, o);
            }
            (*n).counted = false;
        }
        0
    }
}

/// Drops the node's version (kept until the message ends) and marks it
/// orphaned.
///
/// # Safety
/// `n` is a node on the stack of the calling state of the service whose
/// `Shared` is `sh` (keep's contract), not borrowed elsewhere.
unsafe fn orphan(sh: &Shared, n: *mut Node) {
    // SAFETY: as the contract says; no Lua call.
    unsafe {
        if let Some(o) = (*n).obj.take() {
            if (*n).counted {
                o.decref();
            }
            keep(sh, o);
        }
        (*n).counted = false;
        (*n).orphan = true;
    }
}

/// Points the node at table `t` of `obj`.
///
/// # Safety
/// As for [`orphan`]; `obj` is the object of a live Arc.
unsafe fn bind(sh: &Shared, n: *mut Node, obj: &SdObject, t: u32) {
    // SAFETY: as the contract says; no Lua call.
    unsafe {
        if let Some(old) = (*n).obj.replace(arc_of(obj)) {
            keep(sh, old);
        }
        (*n).table = t;
    }
}

/// Root at stack index `n`: moves to the staged version and takes the cached
/// children along. Runs no Lua code.
///
/// # Safety
/// `l` is the calling state of the service whose `Shared` is `sh`; `n` is
/// the absolute index of a root node; nothing with a destructor is alive
/// in the caller (walk's stack checks may raise).
unsafe fn apply(l: State, sh: &Shared, n: c_int) {
    // SAFETY: the userdata at `n` is a node (contract), on the stack; the
    // staged Arc moves into it, the old version to the pins.
    let (p, t) = unsafe {
        let node = lua_touserdata(l, n) as *mut Node;
        let Some(new) = (*node).pending.take() else {
            return;
        };
        let t = (*node).pending_table;
        let p = Arc::as_ptr(&new);
        if let Some(old) = (*node).obj.replace(new) {
            if (*node).counted {
                old.decref();
            }
            keep(sh, old);
        }
        // The staged version was counted by proxyupdate.
        (*node).counted = true;
        (*node).table = t;
        (p, t)
    };
    // SAFETY: the root node (on the stack) holds the version, a live Arc,
    // and the walk runs no Lua code that could replace it.
    unsafe { walk(l, sh, n, Some(&*p), t) };
}

/// Forgets what the inner table of the node at `n` has read, rebinding
/// the child proxies whose key is still a table in table `t` of `obj`
/// (`obj` None: orphaning them all). Only raw reads of tables and writes of
/// existing keys: no allocation, no Lua code.
///
/// # Safety
/// As for [`apply`], `n` being the absolute index of any node; `obj` is
/// the object of a live Arc that a node on the stack holds.
unsafe fn walk(l: State, sh: &Shared, n: c_int, obj: Option<&SdObject>, t: u32) {
    // SAFETY: the 8 slots used are checked first (try_node checks its
    // own); lua_next walks the inner table, whose keys are only set to nil
    // meanwhile (allowed during a traversal; no allocation); each child is
    // a node try_node pushed (at cn); table_key reads the key at k, on the
    // stack while used; bind gets `o`, held as the contract says, and the
    // recursion passes the same on. No Lua code runs, so no node changes
    // under us.
    unsafe {
        luaL_checkstack(l, 8, std::ptr::null());
        lua_getiuservalue(l, n, UV_INNER);
        let inner = lua_gettop(l);
        lua_pushnil(l);
        while lua_next(l, inner) != 0 {
            let k = inner + 1;
            let keep_entry = match lua_type(l, -1) {
                // the node itself
                LUA_TUSERDATA => true,
                LUA_TTABLE => match try_node(l, inner + 2) {
                    Some(child) => {
                        let cn = lua_gettop(l);
                        let found = obj.and_then(|o| Some((o, table_key(l, k)?)));
                        match found.and_then(|(o, key)| o.get(t, key).map(|v| (o, v))) {
                            Some((o, Value::Table(i))) => {
                                bind(sh, child, o, i);
                                walk(l, sh, cn, Some(o), i);
                                true
                            }
                            _ => {
                                orphan(sh, child);
                                walk(l, sh, cn, None, 0);
                                false
                            }
                        }
                    }
                    None => false,
                },
                _ => false,
            };
            if !keep_entry {
                lua_pushvalue(l, k);
                lua_pushnil(l);
                lua_rawset(l, inner);
            }
            lua_settop(l, k);
        }
        lua_settop(l, inner - 1);
    }
}

/// Brings the proxy whose node is at `n` to the newest version that its
/// root has received. Runs no Lua code.
///
/// # Safety
/// As for [`walk`]: `n` is the absolute index of a node.
unsafe fn ensure(l: State, sh: &Shared, n: c_int) {
    // SAFETY: the node at `n` is on the stack (contract), and its parent node
    // is pushed (at pn) before it is used, so both pointers stay valid; the 6
    // slots used are checked first. apply, walk, bind and orphan run no Lua
    // code, so the parent's version `po` (a live Arc it holds) is still there
    // for bind and walk; setting an inner key to nil does not allocate.
    unsafe {
        let node = lua_touserdata(l, n) as *mut Node;
        match &(*node).obj {
            Some(o) if o.is_dirty() => {}
            _ => return,
        }
        luaL_checkstack(l, 6, std::ptr::null());
        let base = lua_gettop(l);
        if lua_getiuservalue(l, n, UV_PARENT) != LUA_TTABLE {
            lua_settop(l, base);
            apply(l, sh, n);
            return;
        }
        let parent = base + 1;
        let Some(pnode) = try_node(l, parent) else {
            lua_settop(l, base);
            return;
        };
        let pn = lua_gettop(l);
        ensure(l, sh, pn);
        let same = match (&(*pnode).obj, &(*node).obj) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            // The parent moved on without this node (the walk did not reach
            // it): look the key up again.
            lua_getiuservalue(l, n, UV_KEY);
            let kidx = lua_gettop(l);
            let found = match &(*pnode).obj {
                Some(po) => {
                    let po: &SdObject = po;
                    match table_key(l, kidx).and_then(|k| po.get((*pnode).table, k)) {
                        Some(Value::Table(i)) => Some((po as *const SdObject, i)),
                        _ => None,
                    }
                }
                None => None,
            };
            match found {
                Some((po, i)) => {
                    bind(sh, node, &*po, i);
                    walk(l, sh, n, Some(&*po), i);
                }
                None => {
                    orphan(sh, node);
                    walk(l, sh, n, None, 0);
                    lua_getiuservalue(l, pn, UV_INNER);
                    lua_pushvalue(l, kidx);
                    lua_pushnil(l);
                    lua_rawset(l, -3);
                }
            }
        }
        lua_settop(l, base);
    }
}

/// The dotted path of the proxy whose node is at `n` (root name first), for
/// messages. Raises (out of stack) only before it has made any text: the
/// stack is checked first for all the loop needs, try_node's check too.
///
/// # Safety
/// `l` is the calling state; `n` the index of a node; nothing with a
/// destructor is alive in the caller.
unsafe fn proxy_path(l: State, n: c_int) -> String {
    // SAFETY: reads of user values into the slots checked first (so the
    // checks inside the loop cannot raise while `parts` holds text); a string
    // key converts nothing, an integer key reads as one; each parent is a node
    // try_node pushed, replacing the one before at `cur`. No Lua code runs.
    unsafe {
        let top = lua_gettop(l);
        luaL_checkstack(l, 8, std::ptr::null());
        let mut parts: Vec<String> = Vec::new();
        lua_pushvalue(l, n);
        for _ in 0..MAX_DEPTH + 1 {
            let cur = lua_gettop(l);
            lua_getiuservalue(l, cur, UV_KEY);
            parts.push(match lua_type(l, -1) {
                LUA_TSTRING => String::from_utf8_lossy(to_bytes(l, -1).unwrap_or(&[])).into_owned(),
                LUA_TNUMBER => int_key_text(lua_tointegerx(l, -1, std::ptr::null_mut())),
                _ => String::new(),
            });
            lua_pop(l, 1);
            lua_getiuservalue(l, cur, UV_PARENT);
            if try_node(l, -1).is_none() {
                break;
            }
            lua_replace(l, cur);
            lua_settop(l, cur);
        }
        lua_settop(l, top);
        let mut s = String::new();
        for k in parts.iter().rev() {
            if !s.is_empty() && !k.starts_with('[') {
                s.push('.');
            }
            s.push_str(k);
        }
        s
    }
}

/// The version and table the proxy whose node is at `n` reads now; raises
/// for an orphaned or released proxy. The reference lasts until the
/// message ends (module doc).
///
/// # Safety
/// As for [`walk`]: `n` is the absolute index of a node; the reference is
/// not used after the message ends.
unsafe fn current<'a>(l: State, sh: &Shared, n: c_int) -> (&'a SdObject, u32) {
    // SAFETY: ensure's contract is ours; the node at `n` is on the stack. The
    // path is made (and dropped) in a statement before raise_here takes the
    // text.
    unsafe {
        ensure(l, sh, n);
        let node = lua_touserdata(l, n) as *mut Node;
        match &(*node).obj {
            // The node's version is only ever replaced by moving it into the
            // service's pins: it lives until the message ends.
            Some(o) => (&*Arc::as_ptr(o), (*node).table),
            None if (*node).orphan => {
                // (A statement: the path is dropped before the raise.)
                let msg = format!("The key [{}] doesn't exist after update", proxy_path(l, n));
                raise_here(l, msg)
            }
            None => raise_here(l, "sharedata proxy is released".to_string()),
        }
    }
}

/// Pushes the value of key `k` for the proxy whose inner table is at `i`
/// and node `node` at `n` (all absolute); returns the number of results.
/// Runs in closures whose upvalue 1 is the service's `Shared`.
///
/// # Safety
/// `l` is the calling state of such a closure, with 4 free slots; `node` is
/// the node at `n` (from as_node); `i` its inner table; nothing with a
/// destructor is alive in the caller.
#[inline]
unsafe fn inner_get(l: State, i: c_int, n: c_int, node: *mut Node, k: c_int) -> c_int {
    // SAFETY: the node is on the stack at `n` (contract); its version lives
    // until the message ends (module doc), as does current's; upvalue 1 is
    // the service's Shared.
    let (obj, t): (&SdObject, u32) = unsafe {
        match &(*node).obj {
            Some(o) if !o.is_dirty() => (&*Arc::as_ptr(o), (*node).table),
            _ => current(l, shared(l), n),
        }
    };
    // SAFETY: the key at `k` stays on the stack while `key` is used (until
    // the push below, or through child, which takes it as given).
    let Some(key) = (unsafe { table_key(l, k) }) else {
        return 0;
    };
    match obj.get(t, key) {
        None | Some(Value::Nil) => 0,
        // SAFETY: child's contract is ours.
        Some(Value::Table(_)) => unsafe { child(l, i, n, k, key) },
        Some(v) => {
            let is_field = matches!(key, KeyRef::Str(b) if b == NODE_FIELD);
            let read_from = obj as *const SdObject;
            // SAFETY: `v` is a value of `obj`, which outlives the push. (It
            // may run finalizers, and they Lua code that moves the proxy.)
            unsafe { push_raw_value(l, obj, v) };
            // SAFETY: the node is still on the stack at `n`; it is read
            // afresh, after the Lua code the push may have run. A raw set
            // runs no Lua code (it may raise out of memory, with nothing to
            // drop).
            unsafe {
                let same = match &(*node).obj {
                    Some(o) => std::ptr::eq(Arc::as_ptr(o), read_from) && (*node).table == t,
                    None => false,
                };
                if same && !is_field {
                    // Remembered for the next read.
                    lua_pushvalue(l, k);
                    lua_pushvalue(l, -2);
                    lua_rawset(l, i);
                }
            }
            1
        }
    }
}

/// Pushes the child proxy for key `k` of the proxy whose inner table is at
/// `i` (node at `n`), from the inner table or new.
///
/// # Safety
/// As for [`inner_get`]; `key` is the key at `k`, read by table_key.
unsafe fn child(l: State, i: c_int, n: c_int, k: c_int, key: KeyRef<'_>) -> c_int {
    // SAFETY: the 8 slots used (beyond new_proxy's and current's own) are
    // checked first; `key` is used only before new_proxy, which may run Lua
    // code; the key is read again from kk after it. The new node `c` stays
    // on the stack (cn); the parent's state is read again by current, whose
    // version, a live Arc until the message ends, bind gets. Nothing with a
    // destructor is alive across the calls that may raise.
    unsafe {
        luaL_checkstack(l, 8, std::ptr::null());
        // The key as the data has it (2.0 reads as 2).
        match key {
            KeyRef::Int(v) => lua_pushinteger(l, v),
            KeyRef::Str(_) => lua_pushvalue(l, k),
        }
        let kk = lua_gettop(l);
        lua_pushvalue(l, kk);
        if lua_rawget(l, i) == LUA_TTABLE {
            return 1;
        }
        lua_pop(l, 1);
        let sh = shared(l);
        let c = new_proxy(l);
        let cn = lua_gettop(l);
        let cp = cn - 1;
        lua_getiuservalue(l, n, UV_SELF);
        lua_setiuservalue(l, cn, UV_PARENT);
        lua_pushvalue(l, kk);
        lua_setiuservalue(l, cn, UV_KEY);
        lua_pushvalue(l, kk);
        lua_pushvalue(l, cp);
        lua_rawset(l, i);
        // The allocations above may have run finalizers, and they Lua code that
        // updated the tree: read the parent's state again.
        let (obj, t) = current(l, sh, n);
        match table_key(l, kk).and_then(|key| obj.get(t, key)) {
            Some(Value::Table(ti)) => {
                bind(sh, c, obj, ti);
                lua_pushvalue(l, cp);
                1
            }
            other => {
                lua_pushvalue(l, kk);
                lua_pushnil(l);
                lua_rawset(l, i);
                match other {
                    Some(v) => {
                        push_raw_value(l, obj, v);
                        1
                    }
                    None => 0,
                }
            }
        }
    }
}

/// `__index` of inner tables; upvalue 2 is the string [`NODE_FIELD`].
unsafe extern "C-unwind" fn inner_index(l: State) -> c_int {
    // SAFETY: upvalue 2 is NODE_FIELD's string (open); with exactly two
    // arguments, slot 3 is the raw value under it in the table at 1, a node
    // only if as_node says so; inner_get then gets that node at 3, the inner
    // table at 1 and the key at 2, within the slots Lua gives a C function.
    // The error text is moved into raise_here.
    unsafe {
        // (Lua calls __index with exactly the table and the key.)
        lua_pushvalue(l, lua_upvalueindex(2));
        let node = if lua_gettop(l) == 3
            && lua_type(l, 1) == LUA_TTABLE
            && lua_rawget(l, 1) == LUA_TUSERDATA
        {
            as_node(l, 3)
        } else {
            None
        };
        match node {
            Some(node) => inner_get(l, 1, 3, node, 2),
            None => raise_here(
                l,
                format!("sharedata: need a sharedata proxy, got {}", type_name(l, 1)),
            ),
        }
    }
}

unsafe extern "C-unwind" fn proxy_newindex(l: State) -> c_int {
    // SAFETY: try_node and proxy_path raise (out of stack) only before any
    // text exists; the node try_node found is at the top for proxy_path.
    let mut path = unsafe {
        match try_node(l, 1) {
            Some(_) => proxy_path(l, lua_gettop(l)),
            None => String::new(),
        }
    };
    // SAFETY: reads of argument 2 that neither convert, allocate nor raise
    // (a string as it is, an integer as one).
    unsafe {
        match lua_type(l, 2) {
            LUA_TSTRING => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&String::from_utf8_lossy(to_bytes(l, 2).unwrap_or(&[])));
            }
            LUA_TNUMBER if lua_isinteger(l, 2) != 0 => {
                path.push_str(&int_key_text(lua_tointegerx(l, 2, std::ptr::null_mut())))
            }
            _ => path.push_str(&format!("[{}]", type_name(l, 2))),
        }
    }
    let msg = format!("attempt to modify read-only sharedata (key [{path}])");
    drop(path);
    // SAFETY: nothing with a destructor is alive (the text is moved).
    unsafe { raise_here(l, msg) }
}

unsafe extern "C-unwind" fn proxy_len(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open); push_node leaves the
    // node on the top for current; the version is valid until the message ends;
    // the push does not allocate.
    unsafe {
        let sh = shared(l);
        push_node(l, 1, "sharedata");
        let (obj, t) = current(l, sh, lua_gettop(l));
        lua_pushinteger(l, obj.len(t) as lua_Integer);
        1
    }
}

unsafe extern "C-unwind" fn proxy_next(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (open); the stack is cut to 2
    // so the node push_node finds is at 3, the inner table at 4, the key at 5
    // (5 slots, and inner_get's 4, within the slots Lua gives a C function).
    // The version from current lives until the message ends, so the key
    // next_key borrows from it stays valid through push_key; `after` borrows
    // argument 2, on the stack. Nothing with a destructor is alive.
    unsafe {
        let sh = shared(l);
        lua_settop(l, 2);
        let node = push_node(l, 1, "sharedata");
        let (obj, t) = current(l, sh, 3);
        let after = if lua_isnil(l, 2) != 0 {
            None
        } else {
            match table_key(l, 2) {
                Some(k) => Some(k),
                None => return 0,
            }
        };
        match obj.next_key(t, after) {
            None => 0,
            Some(k) => {
                lua_getiuservalue(l, 3, UV_INNER);
                push_key(l, k);
                let kidx = lua_gettop(l);
                if inner_get(l, 4, 3, node, kidx) == 0 {
                    lua_pushnil(l);
                }
                lua_pushvalue(l, kidx);
                lua_insert(l, -2);
                2
            }
        }
    }
}

unsafe extern "C-unwind" fn proxy_pairs(l: State) -> c_int {
    // SAFETY: three pushes into the slots Lua gives a C function; upvalue 2
    // is proxy_next (open).
    unsafe {
        lua_pushvalue(l, lua_upvalueindex(2));
        lua_pushvalue(l, 1);
        lua_pushnil(l);
        3
    }
}

/// `proxy(obj [, name])`: a root proxy reading `obj`.
unsafe extern "C-unwind" fn lproxy(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the checks and
    // new_proxy raise with nothing to drop. The handle is looked up again after
    // new_proxy (its allocations may have run finalizers): the object is pinned
    // (a live Arc for bind), and the node is on the top until popped, leaving
    // the proxy.
    unsafe {
        let sh = shared(l);
        check_handle(l, sh, 1, "proxy");
        let named = lua_isnoneornil(l, 2) == 0;
        if named {
            luaL_checktype(l, 2, LUA_TSTRING);
        }
        let node = new_proxy(l);
        let n = lua_gettop(l);
        if named {
            lua_pushvalue(l, 2);
            lua_setiuservalue(l, n, UV_KEY);
        }
        (*node).is_root = true;
        // Looked up again: the allocations may have run finalizers (the pin
        // keeps the object; the lookup is in the service's pins).
        let (obj, t) = check_handle(l, sh, 1, "proxy");
        obj.incref();
        (*node).counted = true;
        bind(sh, node, obj, t);
        lua_pop(l, 1);
        1
    }
}

/// `proxyupdate(root, obj)`: moves the root proxy, and the children it has
/// made, to the newer version `obj` (skynet stages it for the next read;
/// nothing reads between the two in a service, so this is the same).
unsafe extern "C-unwind" fn lproxyupdate(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); the node
    // push_node finds stays at `n`; the checks raise with nothing to drop (`cur`
    // borrows the node, and none of them runs Lua code); `obj` is pinned, a live
    // Arc for arc_of; the staged version replaced goes to the pins; apply gets
    // a root node at `n`.
    unsafe {
        let sh = shared(l);
        let node = push_node(l, 1, "proxyupdate");
        let n = lua_gettop(l);
        if !(*node).is_root {
            raise_here(l, "proxyupdate: need a root proxy".to_string());
        }
        let (obj, t) = check_handle(l, sh, 2, "proxyupdate");
        let Some(cur) = &(*node).obj else {
            raise_here(l, "proxyupdate: the proxy is released".to_string());
        };
        if cur.id == obj.id {
            raise_here(l, "You should update a new object".to_string());
        }
        if !cur.is_dirty() {
            raise_here(l, "Only dirty object can be update".to_string());
        }
        obj.incref();
        if let Some(old) = (*node).pending.replace(arc_of(obj)) {
            old.decref();
            keep(sh, old);
        }
        (*node).pending_table = t;
        apply(l, sh, n);
        0
    }
}

/// `flush(proxy)`: moves the proxy's tree to its newest staged version now.
unsafe extern "C-unwind" fn lflush(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); push_node leaves
    // the node on the top for ensure.
    unsafe {
        let sh = shared(l);
        push_node(l, 1, "flush");
        ensure(l, sh, lua_gettop(l));
        0
    }
}

/// `object(proxy)`: the handle the proxy reads now (nil once orphaned).
unsafe extern "C-unwind" fn lobject(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); push_node leaves
    // the node on the top for ensure, and on the stack for the read after it;
    // the push does not allocate.
    unsafe {
        let sh = shared(l);
        let node = push_node(l, 1, "object");
        ensure(l, sh, lua_gettop(l));
        match &(*node).obj {
            Some(o) => push_handle(l, o, (*node).table),
            None => lua_pushnil(l),
        }
        1
    }
}

/// Pushes a plain Lua copy of table `t`. Allocates: may raise and run Lua
/// code.
///
/// # Safety
/// `l` is the calling state; `obj` lives until the message ends (pinned);
/// nothing with a destructor is alive in the caller.
unsafe fn push_copy(l: State, obj: &SdObject, t: u32) {
    // SAFETY: 4 slots are checked per level (depth at most MAX_DEPTH: build
    // refuses more); the table being filled is fresh and has no metatable, at
    // -2 (rawseti) or -3 (rawset). Finalizers run by the allocations cannot
    // free `obj` (contract), so the header copy and the slices of its parts
    // stay valid; only those borrows are alive across the raises.
    unsafe {
        luaL_checkstack(l, 4, std::ptr::null());
        let h = *obj.hdr(t);
        lua_createtable(l, h.arr_len as c_int, h.ent_len as c_int);
        for (i, v) in obj.array(&h).iter().enumerate() {
            if *v != Value::Nil {
                push_copy_value(l, obj, *v);
                lua_rawseti(l, -2, i as lua_Integer + 1);
            }
        }
        for e in obj.ents(&h) {
            push_key(l, obj.key_out(&e.key));
            push_copy_value(l, obj, e.value);
            lua_rawset(l, -3);
        }
    }
}

/// # Safety
/// As for [`push_copy`]; `v` is a value of `obj`.
unsafe fn push_copy_value(l: State, obj: &SdObject, v: Value) {
    // SAFETY: push_copy's (and push_raw_value's) contract is ours.
    unsafe {
        match v {
            Value::Table(t) => push_copy(l, obj, t),
            v => push_raw_value(l, obj, v),
        }
    }
}

/// `copy(obj, k1, k2, ...)`: a plain Lua copy of the value at the path
/// (nil where the path leads nowhere).
unsafe extern "C-unwind" fn lcopy(l: State) -> c_int {
    // SAFETY: upvalue 1 is the service's Shared (module doc); check_handle
    // raises with nothing to drop; the object is pinned, so it outlives every
    // allocation below; the path keys are arguments, on the stack while read.
    unsafe {
        let sh = shared(l);
        // The object is pinned: it outlives every allocation below.
        let (obj, mut t) = check_handle(l, sh, 1, "copy");
        let top = lua_gettop(l);
        for i in 2..=top {
            let v = table_key(l, i).and_then(|k| obj.get(t, k));
            match v {
                Some(Value::Table(s)) => t = s,
                Some(v) if i == top => {
                    push_raw_value(l, obj, v);
                    return 1;
                }
                _ => {
                    lua_pushnil(l);
                    return 1;
                }
            }
        }
        push_copy(l, obj, t);
        1
    }
}

/// `stat()`: the sharedata objects alive in the process, and their bytes.
unsafe extern "C-unwind" fn lstat(l: State) -> c_int {
    let (n, bytes) = live_stats();
    // SAFETY: pushes into the slots Lua gives a C function.
    unsafe {
        lua_pushinteger(l, n as lua_Integer);
        lua_pushinteger(l, bytes as lua_Integer);
    }
    2
}

// ---------------------------------------------------------------------------
// Module

pub const FUNCS: &[(&CStr, lua_CFunction)] = &[
    // used by the host (sharedatad)
    (c"new", lnew),
    (c"delete", ldelete),
    (c"markdirty", lmarkdirty),
    (c"getref", lgetref),
    (c"incref", lincref),
    (c"decref", ldecref),
    // used by readers through skynet's corelib
    (c"box", lbox),
    (c"index", lindex),
    (c"nextkey", lnextkey),
    (c"len", llen),
    (c"hashlen", lhashlen),
    (c"isdirty", lisdirty),
    (c"needupdate", lneedupdate),
    (c"update", lupdate),
    // native proxies (our corelib), copies and counts
    (c"proxy", lproxy),
    (c"proxyupdate", lproxyupdate),
    (c"flush", lflush),
    (c"object", lobject),
    (c"copy", lcopy),
    (c"stat", lstat),
];

/// Registers a metatable with a `__gc` under `mt` (once per state).
///
/// # Safety
/// `l` is a live state run by this thread, with 3 free slots; nothing with
/// a destructor is alive in the caller.
unsafe fn gc_metatable(l: State, mt: &'static u8, gc: lua_CFunction) {
    // SAFETY: as the contract says: a tight sequence on slots pushed here.
    unsafe {
        if lua_rawgetp(l, LUA_REGISTRYINDEX, key(mt)) == LUA_TTABLE {
            lua_pop(l, 1);
            return;
        }
        lua_pop(l, 1);
        lua_createtable(l, 0, 1);
        lua_pushcfunction(l, gc);
        lua_setfield(l, -2, c"__gc".as_ptr());
        lua_rawsetp(l, LUA_REGISTRYINDEX, key(mt));
    }
}

/// `require "skynet.sharedata.core"`.
///
/// # Safety
/// A Lua C function: `l` must be a live state whose registry holds the
/// service's `skynet_context`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is live (contract); open_bound raises if the registry has
    // no `skynet_context`, which is then the service's Shared, outliving the
    // state, for every closure made here. A tight sequence of Lua API calls on
    // slots pushed here (the module table stays at the bottom, each metatable
    // at -2 below what is set in it), within the slots Lua gives a C function;
    // raises have nothing to drop.
    unsafe {
        open_bound(l, FUNCS);
        gc_metatable(l, &HOST_MT, host_gc);
        gc_metatable(l, &CTRL_MT, ctrl_gc);
        if lua_rawgetp(l, LUA_REGISTRYINDEX, key(&NODE_MT)) != LUA_TTABLE {
            lua_createtable(l, 0, 1);
            lua_getfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            lua_pushcclosure(l, node_gc, 1);
            lua_setfield(l, -2, c"__gc".as_ptr());
            lua_rawsetp(l, LUA_REGISTRYINDEX, key(&NODE_MT));
        }
        lua_pop(l, 1);
        if lua_rawgetp(l, LUA_REGISTRYINDEX, key(&PROXY_MT)) != LUA_TTABLE {
            lua_pop(l, 1);
            lua_getfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            let sh = lua_touserdata(l, -1);
            lua_pop(l, 1);
            push_bytes(l, NODE_FIELD);
            lua_rawsetp(l, LUA_REGISTRYINDEX, key(&NODE_KEY));
            // inner tables
            lua_createtable(l, 0, 1);
            lua_pushlightuserdata(l, sh);
            lua_rawgetp(l, LUA_REGISTRYINDEX, key(&NODE_KEY));
            lua_pushcclosure(l, inner_index, 2);
            lua_setfield(l, -2, c"__index".as_ptr());
            lua_rawsetp(l, LUA_REGISTRYINDEX, key(&INNER_MT));
            // proxies
            lua_createtable(l, 0, 3);
            for (name, f) in [
                (c"__newindex", proxy_newindex as lua_CFunction),
                (c"__len", proxy_len),
            ] {
                lua_pushlightuserdata(l, sh);
                lua_pushcclosure(l, f, 1);
                lua_setfield(l, -2, name.as_ptr());
            }
            lua_pushlightuserdata(l, sh);
            lua_pushlightuserdata(l, sh);
            lua_pushcclosure(l, proxy_next, 1);
            lua_pushcclosure(l, proxy_pairs, 2);
            lua_setfield(l, -2, c"__pairs".as_ptr());
            lua_rawsetp(l, LUA_REGISTRYINDEX, key(&PROXY_MT));
        } else {
            lua_pop(l, 1);
        }
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snlua::core;
    use std::ffi::CString;

    /// A bare Lua state with this module as the global `sd` and skynet.core's
    /// packstring/unpack as globals.
    struct TestLua {
        l: State,
        sh: Box<Shared>,
    }

    impl TestLua {
        fn new() -> Self {
            let sh = Shared::detached();
            // SAFETY: a fresh state used by this thread only; `sh` outlives
            // it (the state is closed in Drop, before `sh` is freed).
            unsafe {
                let l = luaL_newstate();
                luaL_openlibs(l);
                lua_pushlightuserdata(l, &*sh as *const Shared as *mut c_void);
                lua_setfield(l, LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
                lua_pushcfunction(l, open);
                lua_call(l, 0, 1);
                lua_setglobal(l, c"sd".as_ptr());
                for (name, f) in core::FUNCS {
                    if matches!(name.to_bytes(), b"packstring" | b"unpack") {
                        lua_pushlightuserdata(l, &*sh as *const Shared as *mut c_void);
                        lua_pushcclosure(l, *f, 1);
                        lua_setglobal(l, name.as_ptr());
                    }
                }
                TestLua { l, sh }
            }
        }

        /// Runs `code`; its results joined by spaces, or the error.
        fn run(&self, code: &str) -> Result<String, String> {
            // SAFETY: the state is live and used by this thread only; the
            // code runs protected. (A result whose __tostring raised would
            // be an unprotected error, which aborts; no test makes one.)
            unsafe {
                let l = self.l;
                lua_settop(l, 0);
                let c = CString::new(code).unwrap();
                let r = if luaL_loadstring(l, c.as_ptr()) == LUA_OK
                    && lua_pcall(l, 0, LUA_MULTRET, 0) == LUA_OK
                {
                    Ok(())
                } else {
                    Err(())
                };
                let n = lua_gettop(l);
                let mut out = Vec::new();
                for i in 1..=n {
                    luaL_tolstring(l, i, std::ptr::null_mut());
                    out.push(String::from_utf8_lossy(to_bytes(l, -1).unwrap_or(&[])).into_owned());
                    lua_pop(l, 1);
                }
                lua_settop(l, 0);
                match r {
                    Ok(()) => Ok(out.join(" ")),
                    Err(()) => Err(out.join(" ")),
                }
            }
        }

        /// Ends the "message": lets go of the objects pinned so far.
        fn end_message(&self) {
            // SAFETY: between runs no native call reads a pinned object.
            unsafe { self.sh.unpin_all() }
        }

        fn ok(&self, code: &str) -> String {
            self.run(code)
                .unwrap_or_else(|e| panic!("{code}\nfailed: {e}"))
        }

        /// The error of `code`, without the position prefix.
        fn err(&self, code: &str) -> String {
            match self.run(code) {
                Ok(v) => panic!("{code}\nsucceeded with {v}"),
                Err(e) => match e.strip_prefix("[string \"") {
                    Some(rest) => rest
                        .split_once("\"]:")
                        .and_then(|(_, r)| r.split_once(": "))
                        .map(|(_, m)| m.to_string())
                        .unwrap_or(e),
                    None => e,
                },
            }
        }
    }

    impl Drop for TestLua {
        fn drop(&mut self) {
            // SAFETY: the state is closed once, before `sh` goes.
            unsafe { lua_close(self.l) };
        }
    }

    /// Builds an object from the table `code` evaluates to.
    fn object(t: &TestLua, code: &str) -> Result<Arc<SdObject>, String> {
        // SAFETY: the state is live and used by this thread only; the code
        // runs protected and every test's code evaluates to a table, which
        // build reads at -1.
        unsafe {
            t.run("return nil").unwrap();
            let c = CString::new(format!("return {code}")).unwrap();
            assert_eq!(luaL_loadstring(t.l, c.as_ptr()), LUA_OK);
            assert_eq!(lua_pcall(t.l, 0, 1, 0), LUA_OK);
            let r = build(t.l, -1);
            lua_settop(t.l, 0);
            r.map_err(|e| e.to_string()).and_then(SdObject::create)
        }
    }

    fn s(k: &str) -> KeyRef<'_> {
        KeyRef::Str(k.as_bytes())
    }

    #[test]
    fn tree_lookups() {
        let t = TestLua::new();
        let o = object(
            &t,
            "{ 10, 20, 30, a = 'x', b = true, f = 1.5, [-7] = 'neg', [1 << 40] = 'big', \
               sub = { k = 'v' } }",
        )
        .unwrap();
        assert_eq!(o.len(0), 3);
        assert_eq!(o.get(0, KeyRef::Int(1)), Some(Value::Int(10)));
        assert_eq!(o.get(0, KeyRef::Int(2)), Some(Value::Int(20)));
        assert_eq!(
            o.get(0, KeyRef::Int(-7)).map(|v| match v {
                Value::Str(sp) => o.str(sp).to_vec(),
                _ => vec![],
            }),
            Some(b"neg".to_vec())
        );
        assert!(matches!(
            o.get(0, KeyRef::Int(1 << 40)),
            Some(Value::Str(_))
        ));
        assert_eq!(o.get(0, s("b")), Some(Value::Bool(true)));
        assert_eq!(o.get(0, s("f")), Some(Value::Real(1.5)));
        assert_eq!(o.get(0, s("nope")), None);
        assert_eq!(o.get(0, KeyRef::Int(4)), None);
        let Some(Value::Table(sub)) = o.get(0, s("sub")) else {
            panic!("sub is a table")
        };
        assert!(matches!(o.get(sub, s("k")), Some(Value::Str(_))));
        assert_eq!(o.hash_len(0), 6);
        // array (skipping holes), then integers ascending, then strings
        let mut keys = Vec::new();
        let mut k = o.next_key(0, None);
        while let Some(kk) = k {
            keys.push(match kk {
                KeyOut::Int(i) => i.to_string(),
                KeyOut::Str(b) => String::from_utf8_lossy(b).into_owned(),
            });
            let owned;
            let after = match kk {
                KeyOut::Int(i) => KeyRef::Int(i),
                KeyOut::Str(b) => {
                    owned = b.to_vec();
                    KeyRef::Str(&owned)
                }
            };
            k = o.next_key(0, Some(after));
        }
        assert_eq!(
            keys,
            ["1", "2", "3", "-7", "1099511627776", "a", "b", "f", "sub"]
        );
        assert_eq!(o.next_key(0, Some(s("missing"))), None);
    }

    #[test]
    fn holes_in_the_array_part_are_skipped() {
        let o = SdObject::create(Tree {
            tables: vec![TableHdr {
                arr_len: 4,
                ..TableHdr::default()
            }],
            values: vec![Value::Nil, Value::Int(2), Value::Nil, Value::Nil],
            entries: Vec::new(),
            slots: Vec::new(),
            strings: Vec::new(),
        })
        .unwrap();
        assert_eq!(o.next_key(0, None), Some(KeyOut::Int(2)));
        assert_eq!(o.next_key(0, Some(KeyRef::Int(2))), None);
        assert_eq!(o.get(0, KeyRef::Int(1)), Some(Value::Nil));
        assert_eq!(o.len(0), 4);
    }

    #[test]
    fn big_tables_are_hashed() {
        let t = TestLua::new();
        let o = object(
            &t,
            "(function() local t = {} for i = 1, 1000 do t['k' .. i] = i; t[-i] = -i end \
             return t end)()",
        )
        .unwrap();
        assert_ne!(o.hdr(0).slot_mask, 0);
        for i in 1..=1000i64 {
            assert_eq!(o.get(0, s(&format!("k{i}"))), Some(Value::Int(i)));
            assert_eq!(o.get(0, KeyRef::Int(-i)), Some(Value::Int(-i)));
        }
        assert_eq!(o.get(0, s("k0")), None);
        assert_eq!(o.get(0, s("k1001")), None);
        assert_eq!(o.hash_len(0), 2000);
    }

    #[test]
    fn shared_subtables_and_strings_are_stored_once() {
        let t = TestLua::new();
        let o = object(
            &t,
            "(function() local s = { 'same', 'same' } return { a = s, b = s, same = 'same' } end)()",
        )
        .unwrap();
        assert_eq!(o.get(0, s("a")), o.get(0, s("b")));
        assert_eq!(o.tables.len(), 2);
        let n_same = o.strings.windows(4).filter(|w| *w == b"same").count();
        assert_eq!(n_same, 1, "strings are interned");
    }

    #[test]
    fn refused_tables_say_why_and_where() {
        let t = TestLua::new();
        let e = |code: &str| object(&t, code).err().unwrap();
        assert_eq!(
            e("(function() local t = {} t.x = { t } return t end)()"),
            "a table contains itself at x[1]"
        );
        assert_eq!(
            e("{ a = { b = print } }"),
            "unsupported value type function at a.b"
        );
        assert_eq!(
            e("{ [1.5] = 1 }"),
            "invalid key 1.5 (keys must be integers or strings)"
        );
        assert_eq!(
            e("{ x = { [true] = 1 } }"),
            "invalid key type boolean (keys must be integers or strings) at x"
        );
        let deep = e("(function() local t = {} for i = 1, 300 do t = { t } end return t end)()");
        assert!(
            deep.starts_with("tables nested deeper than 256 at [1][1]"),
            "{deep}"
        );
        assert!(deep.ends_with("(256 keys deep)"), "{deep}");
    }

    #[test]
    fn objects_are_found_only_while_alive() {
        let t = TestLua::new();
        let o = object(&t, "{ a = 1 }").unwrap();
        let id = o.id;
        let bytes = o.bytes;
        assert!(bytes > 0);
        assert!(find(id).is_some());
        let (n, b) = live_stats();
        assert!(n >= 1 && b >= bytes);
        drop(o);
        assert!(find(id).is_none(), "a dropped object cannot be found");
    }

    #[test]
    fn host_api_and_refcounts() {
        let t = TestLua::new();
        assert_eq!(
            t.ok("H = sd.new({ a = 1, sub = { b = 2 } }); return sd.getref(H), sd.incref(H), sd.decref(H), sd.isdirty(H)"),
            "0 1 0 false"
        );
        // a box counts itself; its collection gives the count back
        assert_eq!(t.ok("B = sd.box(H); return sd.getref(H)"), "1");
        assert_eq!(
            t.ok("B = nil; collectgarbage(); collectgarbage(); return sd.getref(H)"),
            "0"
        );
        assert_eq!(
            t.ok("local s = sd.index(H, 'sub'); return type(s), sd.index(s, 'b'), sd.len(H), sd.hashlen(H), sd.index(H, 'none')"),
            "userdata 2 0 2"
        );
        assert_eq!(t.ok("sd.markdirty(H); return sd.isdirty(H)"), "true");
        assert_eq!(
            t.ok("return sd.nextkey(H), sd.nextkey(H, 'a'), select('#', sd.nextkey(H, 'sub'))"),
            "a sub 0"
        );
        t.ok("sd.delete(H)");
        assert!(t
            .err("sd.delete(H)")
            .contains("was not made by this service, or is deleted"));
        // pinned during this "message": still readable; gone after it
        assert_eq!(t.ok("return sd.index(H, 'a')"), "1");
        t.end_message();
        assert!(t
            .err("return sd.index(H, 'a')")
            .contains("invalid sharedata object"));
    }

    #[test]
    fn bad_handles_are_errors() {
        let t = TestLua::new();
        assert_eq!(
            t.err("return sd.index('x', 1)"),
            "index: need a sharedata object, got string"
        );
        assert!(t
            .err("return sd.index(unpack('\\3' .. string.pack('<I8', 0x123400000001)), 1)")
            .starts_with("index: invalid sharedata object 0x123400000001"));
        t.ok("H = sd.new({ 1 })");
        // a table index past the object's tables
        assert!(t
            .err("local h = unpack(packstring(H)); local s = packstring(h):sub(2); \
                  local v = string.unpack('<I8', s) + 5; return sd.len(unpack('\\3' .. string.pack('<I8', v)))")
            .contains("invalid sharedata object"));
        assert_eq!(
            t.err("return sd.needupdate({})"),
            "needupdate: need a sharedata box, got table"
        );
        assert_eq!(
            t.err("return sd.update(io.stdout, H, {})"),
            "update: need a sharedata box, got userdata"
        );
        assert_eq!(
            t.err("return sd.flush({})"),
            "flush: need a sharedata proxy, got table"
        );
        assert_eq!(t.err("return sd.index(H, 2.5)"), "Invalid key 2.500000");
        assert_eq!(t.ok("return sd.nextkey(H, 2.5)"), "");
    }

    #[test]
    fn skynet_box_update_protocol() {
        let t = TestLua::new();
        t.ok("V1 = sd.new({ a = 1 }); V2 = sd.new({ a = 2 }); B = sd.box(V1)");
        assert_eq!(t.ok("return sd.needupdate(B)"), "");
        assert_eq!(
            t.err("sd.update(B, V1, {})"),
            "You should update a new object"
        );
        t.ok("sd.update(B, V2, { tag = 'next' })");
        assert_eq!(
            t.ok("local p, tbl = sd.needupdate(B); return p == V2, tbl.tag"),
            "true next"
        );
    }

    #[test]
    fn proxies_read_like_tables() {
        let t = TestLua::new();
        t.ok("H = sd.new({ 'x', 'y', a = 1, c = { d = { e = 'deep' } }, [2.0 + 1] = 'three' }); P = sd.proxy(H, 'cfg')");
        assert_eq!(
            t.ok("return P.a, P[1], P[2.0], P.c.d.e, P.missing, P[true], P[1.5]"),
            "1 x y deep nil nil nil"
        );
        assert_eq!(
            t.ok("return P.c == P.c, P.c.d == P.c.d, #P, P[3]"),
            "true true 3 three"
        );
        assert_eq!(
            t.ok("local o = {} for k, v in pairs(P) do o[#o+1] = k .. '=' .. type(v) end return table.concat(o, ',')"),
            "1=string,2=string,3=string,a=number,c=table"
        );
        assert_eq!(
            t.ok("local o = {} for i, v in ipairs(P) do o[i] = v end return table.concat(o)"),
            "xythree"
        );
        assert_eq!(
            t.err("P.c.d.x = 1"),
            "attempt to modify read-only sharedata (key [cfg.c.d.x])"
        );
        assert_eq!(
            t.err("P[7] = 1"),
            "attempt to modify read-only sharedata (key [cfg[7]])"
        );
        assert_eq!(t.ok("return rawget(P, 'a'), P.a, next(P)"), "nil 1 nil");
        assert_eq!(t.ok("return sd.copy(sd.object(P)).c.d.e, sd.copy(H, 'c', 'd', 'e'), sd.copy(H, 'a', 'b')"), "deep deep nil");
        assert_eq!(t.ok("return getmetatable(sd.copy(H, 'c')) == nil"), "true");
    }

    #[test]
    fn proxies_move_to_new_versions() {
        let t = TestLua::new();
        t.ok(
            "V1 = sd.new({ a = 1, b = { 'old' }, c = { x = 1 } }); P = sd.proxy(V1, 'n'); \
              B = P.b; C = P.c",
        );
        assert_eq!(t.ok("return sd.getref(V1)"), "1");
        t.ok("V2 = sd.new({ a = 2, c = { x = 2 } })");
        assert_eq!(
            t.err("sd.proxyupdate(P, V2)"),
            "Only dirty object can be update"
        );
        assert_eq!(
            t.err("sd.proxyupdate(C, V2)"),
            "proxyupdate: need a root proxy"
        );
        t.ok("sd.markdirty(V1); sd.proxyupdate(P, V2)");
        // the whole tree moves at once, and lets go of the old version
        assert_eq!(t.ok("return sd.getref(V1), sd.getref(V2)"), "0 1");
        assert_eq!(t.ok("return C.x, P.a, P.c == C"), "2 2 true");
        // (no proxy holds V1 now: once its maker lets go, it is freed)
        t.ok("sd.delete(V1)");
        t.end_message();
        assert!(t
            .err("return sd.len(V1)")
            .contains("invalid sharedata object"));
        assert_eq!(
            t.err("return B[1]"),
            "The key [n.b] doesn't exist after update"
        );
        assert_eq!(t.ok("return P.b"), "nil");
        // a child that nobody holds is forgotten; a new version brings it back
        t.ok("V3 = sd.new({ a = 3, b = { 'new' }, c = { x = 3 } }); sd.markdirty(V2); sd.proxyupdate(P, V3); sd.flush(P)");
        assert_eq!(t.ok("return P.b[1], C.x, sd.object(P) == V3"), "new 3 true");
        assert!(t.err("return B[1]").contains("doesn't exist after update"));
        // dropping the proxies gives the count back
        assert_eq!(
            t.ok("P, B, C = nil; collectgarbage(); collectgarbage(); return sd.getref(V3)"),
            "0"
        );
    }

    #[test]
    fn values_read_before_an_update_are_not_seen_after_it() {
        let t = TestLua::new();
        t.ok(
            "V1 = sd.new({ a = 1, s = 'one', c = { x = 1, d = { y = 1 } }, gone = { z = 1 } }); \
              P = sd.proxy(V1, 'n'); C = P.c; D = C.d; G = P.gone",
        );
        // read twice: the second read is served by the proxy's inner table
        assert_eq!(
            t.ok("return P.a, P.a, P.s, C.x, D.y, G.z, G.z"),
            "1 1 one 1 1 1 1"
        );
        t.ok(
            "V2 = sd.new({ a = 2, s = 'two', c = { x = 2, d = { y = 2 } } }); \
              sd.markdirty(V1); sd.proxyupdate(P, V2)",
        );
        assert_eq!(
            t.ok("return P.a, P.s, C.x, D.y, P.c.d == D"),
            "2 two 2 2 true"
        );
        assert_eq!(
            t.err("return G.z"),
            "The key [n.gone] doesn't exist after update"
        );
        // a data key that looks like the proxy's own field is read, never kept
        let field = "'\\xff<sharedata node>\\xff'";
        // (it reads as the node: no real data has such a key)
        t.ok(&format!("F = sd.proxy(sd.new({{ [{field}] = 7, b = 1 }}))"));
        assert_eq!(
            t.ok(&format!(
                "return type(F[{field}]), type(F[{field}]), F.b, F.b"
            )),
            "userdata userdata 1 1"
        );
        // a node's __gc called by hand leaves a released proxy, not a crash
        t.ok(&format!(
            "local node = F[{field}]; getmetatable(node).__gc(node); getmetatable(node).__gc(node)"
        ));
        assert_eq!(t.ok("return F.b"), "1");
        assert_eq!(t.err("return F.c"), "sharedata proxy is released");
        assert_eq!(t.err("return #F"), "sharedata proxy is released");
    }

    #[test]
    fn versions_are_freed_when_nobody_reads_them() {
        let t = TestLua::new();
        t.ok("H = sd.new({ a = { b = 1 } }); P = sd.proxy(H); A = P.a");
        assert_eq!(t.ok("return sd.copy(H, 'a', 'b')"), "1");
        let handle =
            t.ok("return string.format('%d', string.unpack('<I8', packstring(H):sub(2)) >> 32)");
        let id: u32 = handle.parse().unwrap();
        t.ok("sd.delete(H)");
        t.end_message();
        assert!(find(id).is_some(), "the proxies hold it");
        t.ok("P = nil; collectgarbage(); collectgarbage()");
        assert!(find(id).is_some(), "a child proxy holds its root");
        t.ok("A = nil; collectgarbage(); collectgarbage()");
        t.end_message();
        assert!(find(id).is_none(), "freed after the last reader");
    }

    #[test]
    fn finalizers_that_update_the_tree_mid_read() {
        // Finalizers run during allocations inside the proxy functions; here
        // they stage and apply new versions of the tree being read.
        let t = TestLua::new();
        let r = t.ok(
            "local versions = {}
             for i = 1, 20 do versions[i] = sd.new({ n = i, sub = { n = i, s = ('x'):rep(50) .. i } }) end
             local P = sd.proxy(versions[1], 'v')
             local cur = 1
             local function bump()
                 if cur < #versions then
                     sd.markdirty(versions[cur]); cur = cur + 1
                     sd.proxyupdate(P, versions[cur]); sd.flush(P)
                 end
             end
             local mt = { __gc = function() bump() end }
             local seen = 0
             for i = 1, 20000 do
                 setmetatable({}, mt)
                 local s = P.sub
                 local n = s.n
                 local str = s.s
                 assert(type(n) == 'number' and type(str) == 'string')
                 seen = math.max(seen, n)
             end
             return cur > 1, seen >= 1",
        );
        assert_eq!(r, "true true");
    }

    /// fake_node(): a plain userdata of a node's size whose bytes are a
    /// node's magic and then zeros (as another native userdata might be).
    unsafe extern "C-unwind" fn fake_node(l: State) -> c_int {
        // SAFETY: Lua calls it with its live state; the userdata has the
        // size asked, and every byte is written.
        unsafe {
            let n = std::mem::size_of::<Node>();
            let p = lua_newuserdatauv(l, n, 0) as *mut u8;
            std::ptr::write_bytes(p, 0, n);
            std::ptr::copy_nonoverlapping(NODE_MAGIC.to_ne_bytes().as_ptr(), p, 8);
        }
        1
    }

    #[test]
    fn other_userdata_under_the_node_field_is_no_proxy() {
        let t = TestLua::new();
        // SAFETY: the state is live and used by this thread only.
        unsafe {
            lua_pushcfunction(t.l, fake_node);
            lua_setglobal(t.l, c"fake_node".as_ptr());
        }
        let field = "'\\xff<sharedata node>\\xff'";
        let e = t.err(&format!(
            "local f = setmetatable({{}}, {{ [{field}] = fake_node() }}) sd.flush(f)"
        ));
        assert_eq!(e, "flush: need a sharedata proxy, got table");
        let e = t.err(&format!("sd.flush({{ [{field}] = fake_node() }})"));
        assert_eq!(e, "flush: need a sharedata proxy, got table");
    }

    #[test]
    fn packstring_of_a_proxy() {
        let t = TestLua::new();
        t.ok("H = sd.new({ a = 1, c = { x = { y = 3 } } }); P = sd.proxy(H, 'cfg')");
        assert_eq!(
            t.ok("local c = unpack(packstring(sd.proxy(sd.new({a=1})))); return c.a"),
            "1"
        );
        assert_eq!(
            t.ok("local c = unpack(packstring(P)); return c.a, c.c.x.y"),
            "1 3"
        );
    }
}
