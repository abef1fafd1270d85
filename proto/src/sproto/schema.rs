//! The schema model: types, fields and protocols, built from a compiled
//! (binary) sproto schema.
//!
//! A compiled schema is itself a sproto message of the meta-schema
//! `.group { type 0 : *type  protocol 1 : *protocol }`, where `type` is
//! `{ name 0 : string  fields 1 : *field }`, `field` is `{ name 0 : string
//! buildin 1 : integer  type 2 : integer  tag 3 : integer  array 4 : boolean
//! key 5 : integer  map 6 : boolean }` and `protocol` is `{ name 0 : string
//! tag 1 : integer  request 2 : integer  response 3 : integer  confirm 4 :
//! boolean }`. [`Schema::from_binary`] checks every length and index before
//! using it and reports what is wrong as a [`SchemaError`].

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fmt;

/// Largest tag a field or protocol can have: its inline word `(tag+1)*2`
/// must fit 16 bits.
pub const MAX_TAG: u32 = 0x7ffe;

/// Largest decimal precision: `integer(n)` scales by `10^n`, which must fit an i64.
pub const MAX_DECIMAL: u32 = 18;

/// What a field holds (for an array field: what each element holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    /// `integer(n)`: a number sent as `round(v * scale)`, `scale = 10^n`.
    Decimal {
        scale: i64,
    },
    Boolean,
    String,
    Binary,
    Double,
    /// A struct: index into [`Schema::types`].
    Struct(usize),
}

/// One field of a struct type.
#[derive(Debug, Clone)]
pub struct Field {
    name: Box<str>,
    cname: CString,
    pub tag: u16,
    pub kind: Kind,
    pub array: bool,
    /// `*T(key)`: the tag of the key field of `T`.
    pub key: Option<u16>,
    /// `*T()`: the array is a map from `T`'s first field to its second.
    pub map: bool,
    /// The field's position among all fields of the schema (type by type):
    /// an index for per-field tables kept by a binding.
    pub id: u32,
}

impl Field {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name with a terminating NUL (for C-style APIs).
    pub fn cname(&self) -> &CStr {
        &self.cname
    }

    /// The struct type index, for struct fields.
    pub fn struct_index(&self) -> Option<usize> {
        match self.kind {
            Kind::Struct(i) => Some(i),
            _ => None,
        }
    }
}

/// A struct type.
#[derive(Debug, Clone)]
pub struct Type {
    name: Box<str>,
    cname: CString,
    /// Fields in ascending tag order.
    pub fields: Vec<Field>,
    /// The tags are `base, base+1, ...` with no gap: look-up by subtraction.
    base: Option<u16>,
    /// Most header words an encoding can need (fields plus one skip word per gap).
    pub maxn: usize,
}

impl Type {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn cname(&self) -> &CStr {
        &self.cname
    }

    /// The field with `tag`.
    #[inline]
    pub fn field_by_tag(&self, tag: u32) -> Option<&Field> {
        if let Some(base) = self.base {
            let i = tag.checked_sub(u32::from(base))? as usize;
            return self.fields.get(i);
        }
        self.fields
            .binary_search_by_key(&tag, |f| u32::from(f.tag))
            .ok()
            .map(|i| &self.fields[i])
    }

    /// The field called `name`.
    pub fn field_by_name(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| &*f.name == name)
    }
}

/// A protocol (an RPC message).
#[derive(Debug, Clone)]
pub struct Protocol {
    name: Box<str>,
    pub tag: u16,
    pub request: Option<usize>,
    pub response: Option<usize>,
    /// `response nil`: the protocol is answered, with no content.
    pub confirm: bool,
}

impl Protocol {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when a request of this protocol expects a response.
    pub fn has_response(&self) -> bool {
        self.response.is_some() || self.confirm
    }
}

/// A loaded schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub types: Vec<Type>,
    /// In ascending tag order.
    pub protocols: Vec<Protocol>,
    /// Fields of all types together ([`Field::id`] is below this).
    pub nfields: usize,
    type_by_name: HashMap<Box<str>, usize>,
    proto_by_name: HashMap<Box<str>, usize>,
}

/// Why a compiled schema was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid sproto schema: {}", self.0)
    }
}

impl std::error::Error for SchemaError {}

fn bad<T>(msg: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError(msg.into()))
}

/// One entry of an encoded struct: its tag and either an inline value or a
/// data item.
enum Item<'a> {
    Inline(u32),
    Data(&'a [u8]),
}

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(b[at]) | u32::from(b[at + 1]) << 8
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The (tag, item) entries of the encoded struct `b`, checked.
fn struct_items<'a>(b: &'a [u8], what: &str) -> Result<Vec<(u32, Item<'a>)>, SchemaError> {
    if b.len() < 2 {
        return bad(format!("{what}: truncated header"));
    }
    let n = le16(b, 0) as usize;
    let mut data = 2 + n * 2;
    if b.len() < data {
        return bad(format!("{what}: {n} field words in {} bytes", b.len()));
    }
    let mut items = Vec::with_capacity(n);
    let mut tag: i64 = -1;
    for i in 0..n {
        let w = le16(b, 2 + i * 2);
        tag += 1;
        if w & 1 == 1 {
            tag += i64::from(w / 2);
            continue;
        }
        if w == 0 {
            if b.len() - data < 4 {
                return bad(format!("{what}: truncated data item"));
            }
            let sz = le32(b, data) as usize;
            if b.len() - data - 4 < sz {
                return bad(format!("{what}: data item of {sz} bytes overruns"));
            }
            items.push((tag as u32, Item::Data(&b[data + 4..data + 4 + sz])));
            data += 4 + sz;
        } else {
            items.push((tag as u32, Item::Inline(w / 2 - 1)));
        }
    }
    Ok(items)
}

/// The elements of an encoded array of structs.
fn struct_array<'a>(b: &'a [u8], what: &str) -> Result<Vec<&'a [u8]>, SchemaError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        if b.len() - at < 4 {
            return bad(format!("{what}: truncated array element"));
        }
        let sz = le32(b, at) as usize;
        if b.len() - at - 4 < sz {
            return bad(format!("{what}: array element of {sz} bytes overruns"));
        }
        out.push(&b[at + 4..at + 4 + sz]);
        at += 4 + sz;
    }
    Ok(out)
}

fn name_of(b: &[u8], what: &str) -> Result<(Box<str>, CString), SchemaError> {
    let s =
        std::str::from_utf8(b).map_err(|_| SchemaError(format!("{what}: name is not UTF-8")))?;
    let c = CString::new(b).map_err(|_| SchemaError(format!("{what}: name holds a NUL byte")))?;
    Ok((s.into(), c))
}

fn pow10(n: u32) -> i64 {
    10i64.pow(n)
}

fn import_field(b: &[u8], ntypes: usize, tname: &str) -> Result<Field, SchemaError> {
    let what = format!("a field of type {tname}");
    let mut name = None;
    let mut builtin: Option<u32> = None;
    let mut kind = None;
    let mut tag = None;
    let mut array = false;
    let mut key = None;
    let mut map = false;
    for (t, item) in struct_items(b, &what)? {
        match (t, item) {
            (0, Item::Data(s)) => name = Some(name_of(s, &what)?),
            (1, Item::Inline(v)) => {
                kind = Some(match v {
                    0 => Kind::Integer,
                    1 => Kind::Boolean,
                    2 => Kind::String,
                    3 => Kind::Double,
                    _ => return bad(format!("{what}: unknown builtin type {v}")),
                });
                builtin = Some(v);
            }
            (2, Item::Inline(v)) => match builtin {
                Some(0) => {
                    if v > MAX_DECIMAL {
                        return bad(format!(
                            "{what}: decimal precision {v} is over {MAX_DECIMAL}"
                        ));
                    }
                    kind = Some(Kind::Decimal { scale: pow10(v) });
                }
                Some(2) => kind = Some(if v == 1 { Kind::Binary } else { Kind::String }),
                Some(_) => return bad(format!("{what}: a type index on a builtin type")),
                None => {
                    if v as usize >= ntypes {
                        return bad(format!("{what}: type index {v} out of range"));
                    }
                    kind = Some(Kind::Struct(v as usize));
                }
            },
            (3, Item::Inline(v)) => tag = Some(v),
            (4, Item::Inline(v)) => array = v != 0,
            (5, Item::Inline(v)) => key = Some(v),
            (6, Item::Inline(v)) => map = v != 0,
            (t, _) => return bad(format!("{what}: unexpected entry with tag {t}")),
        }
    }
    let (Some((name, cname)), Some(kind), Some(tag)) = (name, kind, tag) else {
        return bad(format!("{what}: name, type or tag missing"));
    };
    if tag > MAX_TAG {
        return bad(format!(
            "field {name} of type {tname}: tag {tag} out of range"
        ));
    }
    if (key.is_some() || map) && !array {
        return bad(format!(
            "field {name} of type {tname}: a key on a non-array field"
        ));
    }
    if map && (key.is_none() || !matches!(kind, Kind::Struct(_))) {
        return bad(format!(
            "field {name} of type {tname}: a map needs a struct and a key"
        ));
    }
    Ok(Field {
        name,
        cname,
        tag: tag as u16,
        kind,
        array,
        key: key.map(|k| k.min(0xffff) as u16),
        map,
        id: 0,
    })
}

fn import_type(b: &[u8], ntypes: usize) -> Result<Type, SchemaError> {
    let mut name = None;
    let mut fields = Vec::new();
    let items = struct_items(b, "a type")?;
    for (t, item) in &items {
        match (t, item) {
            (0, Item::Data(s)) => name = Some(name_of(s, "a type")?),
            (1, Item::Data(_)) => {}
            (t, _) => return bad(format!("a type: unexpected entry with tag {t}")),
        }
    }
    let Some((name, cname)) = name else {
        return bad("a type without a name");
    };
    for (t, item) in items {
        if let (1, Item::Data(s)) = (t, item) {
            for fb in struct_array(s, &name)? {
                fields.push(import_field(fb, ntypes, &name)?);
            }
        }
    }
    let mut maxn = fields.len();
    let mut last: i64 = -1;
    for f in &fields {
        let t = i64::from(f.tag);
        if t <= last {
            return bad(format!(
                "type {name}: tags not in ascending order at {}",
                f.name
            ));
        }
        if t > last + 1 {
            maxn += 1;
        }
        last = t;
    }
    let base = match (fields.first(), fields.last()) {
        (Some(a), Some(z)) if usize::from(z.tag - a.tag) + 1 == fields.len() => Some(a.tag),
        _ => None,
    };
    Ok(Type {
        name,
        cname,
        fields,
        base,
        maxn,
    })
}

fn import_protocol(b: &[u8], ntypes: usize) -> Result<Protocol, SchemaError> {
    let mut name = None;
    let mut tag = None;
    let (mut request, mut response, mut confirm) = (None, None, false);
    for (t, item) in struct_items(b, "a protocol")? {
        let index = |v: u32| -> Result<Option<usize>, SchemaError> {
            if v as usize >= ntypes {
                return bad(format!("a protocol: type index {v} out of range"));
            }
            Ok(Some(v as usize))
        };
        match (t, item) {
            (0, Item::Data(s)) => name = Some(name_of(s, "a protocol")?.0),
            (1, Item::Inline(v)) => tag = Some(v),
            (2, Item::Inline(v)) => request = index(v)?,
            (3, Item::Inline(v)) => response = index(v)?,
            (4, Item::Inline(v)) => confirm = v != 0,
            (t, _) => return bad(format!("a protocol: unexpected entry with tag {t}")),
        }
    }
    let (Some(name), Some(tag)) = (name, tag) else {
        return bad("a protocol without a name or a tag");
    };
    if tag > MAX_TAG {
        return bad(format!("protocol {name}: tag {tag} out of range"));
    }
    Ok(Protocol {
        name,
        tag: tag as u16,
        request,
        response,
        confirm,
    })
}

impl Schema {
    /// Loads a compiled schema (the output of the schema parser).
    pub fn from_binary(b: &[u8]) -> Result<Schema, SchemaError> {
        let mut type_data = None;
        let mut proto_data = None;
        for (t, item) in struct_items(b, "the group")? {
            match (t, item) {
                (0, Item::Data(s)) => type_data = Some(struct_array(s, "the type list")?),
                (1, Item::Data(s)) => proto_data = Some(struct_array(s, "the protocol list")?),
                (t, _) => return bad(format!("the group: unexpected entry with tag {t}")),
            }
        }
        let type_data = type_data.unwrap_or_default();
        let ntypes = type_data.len();
        let mut types = Vec::with_capacity(ntypes);
        for tb in type_data {
            types.push(import_type(tb, ntypes)?);
        }
        // A map reads the first two fields of its struct.
        for t in &types {
            for f in &t.fields {
                if let (true, Kind::Struct(i)) = (f.map, f.kind) {
                    if types[i].fields.len() < 2 {
                        return bad(format!(
                            "field {} of type {}: map type {} has fewer than two fields",
                            f.name, t.name, types[i].name
                        ));
                    }
                }
            }
        }
        let mut id = 0u32;
        for t in &mut types {
            for f in &mut t.fields {
                f.id = id;
                id += 1;
            }
        }
        let nfields = id as usize;
        let mut protocols = Vec::new();
        for pb in proto_data.unwrap_or_default() {
            protocols.push(import_protocol(pb, ntypes)?);
        }
        protocols.sort_by_key(|p| p.tag);
        let mut type_by_name = HashMap::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            type_by_name.entry(t.name.clone()).or_insert(i);
        }
        let mut proto_by_name = HashMap::with_capacity(protocols.len());
        for (i, p) in protocols.iter().enumerate() {
            proto_by_name.entry(p.name.clone()).or_insert(i);
        }
        Ok(Schema {
            types,
            protocols,
            nfields,
            type_by_name,
            proto_by_name,
        })
    }

    /// The index of the type called `name`.
    pub fn type_index(&self, name: &[u8]) -> Option<usize> {
        let name = std::str::from_utf8(name).ok()?;
        self.type_by_name.get(name).copied()
    }

    /// The protocol called `name`.
    pub fn protocol_by_name(&self, name: &[u8]) -> Option<&Protocol> {
        let name = std::str::from_utf8(name).ok()?;
        self.proto_by_name.get(name).map(|&i| &self.protocols[i])
    }

    /// The protocol with `tag`.
    pub fn protocol_by_tag(&self, tag: i64) -> Option<&Protocol> {
        let tag = u16::try_from(tag).ok()?;
        self.protocols
            .binary_search_by_key(&tag, |p| p.tag)
            .ok()
            .map(|i| &self.protocols[i])
    }

    /// A listing of the schema, in the layout of skynet's `sproto_dump`.
    pub fn dump(&self) -> String {
        use fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "=== {} types ===", self.types.len());
        for t in &self.types {
            let _ = writeln!(s, "{}", t.name);
            for f in &t.fields {
                let tn = match f.kind {
                    Kind::Integer => "integer",
                    Kind::Decimal { .. } => "decimal",
                    Kind::Boolean => "boolean",
                    Kind::String => "string",
                    Kind::Binary => "binary",
                    Kind::Double => "double",
                    Kind::Struct(i) => &self.types[i].name,
                };
                let star = if f.array { "*" } else { "" };
                let _ = write!(s, "\t{} ({}) {star}{tn}", f.name, f.tag);
                if let Kind::Decimal { scale } = f.kind {
                    let _ = write!(s, "({scale})");
                }
                if let Some(k) = f.key {
                    let _ = write!(s, " key[{k}]");
                    if let (true, Kind::Struct(i)) = (f.map, f.kind) {
                        let _ = write!(s, " value[{}]", self.types[i].fields[1].tag);
                    }
                }
                s.push('\n');
            }
        }
        let _ = writeln!(s, "=== {} protocol ===", self.protocols.len());
        for p in &self.protocols {
            let req = p.request.map_or("(null)", |i| &self.types[i].name);
            let _ = write!(s, "\t{} ({}) request:{req}", p.name, p.tag);
            if let Some(r) = p.response {
                let _ = write!(s, " response:{}", self.types[r].name);
            } else if p.confirm {
                s.push_str(" response nil");
            }
            s.push('\n');
        }
        s
    }
}
