//! Struct decoding driven by the schema, handing values to a
//! [`DecodeVisitor`].
//!
//! Every length and count is checked against the input before it is used;
//! unknown tags are skipped (a newer peer may send more fields). A nested
//! struct must fill its data item exactly; the top-level struct may be
//! followed by other bytes (an RPC header is followed by its body), and
//! [`decode`] says how many bytes it used.

use super::encode::MAX_DEPTH;
use super::schema::{Field, Kind, Schema, Type, MAX_TAG};
use std::fmt;

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes do not form a message of the type; says what is wrong.
    Malformed(&'static str),
    TooDeep,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "decode error ({why})"),
            DecodeError::TooDeep => f.write_str("The table is too deep"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A decoded scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Integer(i64),
    /// A double, or a decimal integer divided by its scale.
    Real(f64),
    Boolean(bool),
    /// A string or binary field (borrowed from the input).
    Bytes(&'a [u8]),
}

/// Receives what the decoder finds. `index` is 0 for a plain field and 1, 2,
/// ... for array elements. Structs and arrays are bracketed by
/// `begin_*`/`end_*`; a struct element of a `*T(key)` or `*T()` field is
/// reported like any array element (the visitor reads `f.key`/`f.map`).
pub trait DecodeVisitor {
    type Error: From<DecodeError>;

    fn value(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        v: Value<'_>,
    ) -> Result<(), Self::Error>;
    /// An array field with `len` elements follows (0 for an empty array).
    fn begin_array(&mut self, ty: &Type, f: &Field, len: usize) -> Result<(), Self::Error>;
    fn end_array(&mut self, ty: &Type, f: &Field) -> Result<(), Self::Error>;
    /// A struct value of type `sub` follows; `words` is the number of header
    /// words it has (a size hint).
    fn begin_struct(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        sub: &Type,
        words: usize,
    ) -> Result<(), Self::Error>;
    fn end_struct(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        sub: &Type,
    ) -> Result<(), Self::Error>;
}

#[inline]
fn le16(b: &[u8], at: usize) -> usize {
    usize::from(b[at]) | usize::from(b[at + 1]) << 8
}

#[inline]
fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn malformed<T, E: From<DecodeError>>(why: &'static str) -> Result<T, E> {
    Err(DecodeError::Malformed(why).into())
}

/// The number of header words of an encoded struct (0 if too short).
pub fn header_words(b: &[u8]) -> usize {
    if b.len() >= 2 {
        le16(b, 0)
    } else {
        0
    }
}

/// Decodes a value of type `ty` from the start of `data`; returns the number
/// of bytes it used.
pub fn decode<V: DecodeVisitor>(
    schema: &Schema,
    ty: usize,
    data: &[u8],
    v: &mut V,
) -> Result<usize, V::Error> {
    Decoder { schema, v }.decode_struct(&schema.types[ty], data, 0)
}

struct Decoder<'a, V> {
    schema: &'a Schema,
    v: &'a mut V,
}

impl<V: DecodeVisitor> Decoder<'_, V> {
    fn decode_struct(&mut self, ty: &Type, data: &[u8], depth: usize) -> Result<usize, V::Error> {
        if data.len() < 2 {
            return malformed("truncated header");
        }
        let n = le16(data, 0);
        if data.len() - 2 < n * 2 {
            return malformed("truncated field words");
        }
        let mut pos = 2 + n * 2;
        let mut tag: u64 = u64::MAX; // -1
        for i in 0..n {
            let w = le16(data, 2 + i * 2);
            tag = tag.wrapping_add(1);
            if w & 1 == 1 {
                tag += (w / 2) as u64;
                continue;
            }
            let item = if w == 0 {
                if data.len() - pos < 4 {
                    return malformed("truncated data item length");
                }
                let sz = le32(data, pos);
                if data.len() - pos - 4 < sz {
                    return malformed("data item overruns the message");
                }
                let item = &data[pos + 4..pos + 4 + sz];
                pos += 4 + sz;
                Some(item)
            } else {
                None
            };
            if tag > u64::from(MAX_TAG) {
                continue;
            }
            let Some(f) = ty.field_by_tag(tag as u32) else {
                continue;
            };
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep.into());
            }
            match item {
                None => {
                    let x = (w / 2 - 1) as i64;
                    let val = match (f.array, f.kind) {
                        (false, Kind::Integer) => Value::Integer(x),
                        (false, Kind::Decimal { scale }) => Value::Real(x as f64 / scale as f64),
                        (false, Kind::Boolean) => Value::Boolean(x != 0),
                        _ => return malformed("inline value for a field that needs data"),
                    };
                    self.v.value(ty, f, 0, val)?;
                }
                Some(item) if f.array => self.decode_array(ty, f, item, depth)?,
                Some(item) => match f.kind {
                    Kind::Integer | Kind::Decimal { .. } | Kind::Double => {
                        let x = match item.len() {
                            4 => i64::from(le32(item, 0) as u32 as i32),
                            8 => i64::from_le_bytes(item.try_into().unwrap_or_default()),
                            _ => return malformed("a number item is neither 4 nor 8 bytes"),
                        };
                        self.v.value(ty, f, 0, number(f.kind, x))?;
                    }
                    Kind::Boolean => return malformed("a data item for a boolean"),
                    Kind::String | Kind::Binary => self.v.value(ty, f, 0, Value::Bytes(item))?,
                    Kind::Struct(sub) => self.decode_sub(ty, f, 0, sub, item, depth)?,
                },
            }
        }
        Ok(pos)
    }

    fn decode_sub(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        sub: usize,
        item: &[u8],
        depth: usize,
    ) -> Result<(), V::Error> {
        let st = &self.schema.types[sub];
        self.v.begin_struct(ty, f, index, st, header_words(item))?;
        let used = self.decode_struct(st, item, depth + 1)?;
        if used != item.len() {
            return malformed("a struct does not fill its data item");
        }
        self.v.end_struct(ty, f, index, st)
    }

    fn decode_array(
        &mut self,
        ty: &Type,
        f: &Field,
        item: &[u8],
        depth: usize,
    ) -> Result<(), V::Error> {
        match f.kind {
            Kind::Integer | Kind::Decimal { .. } | Kind::Double => {
                let body = item.get(1..).unwrap_or_default();
                let width = match (item.first(), body.len()) {
                    (_, 0) => 1,
                    (Some(4), n) if n % 4 == 0 => 4,
                    (Some(8), n) if n % 8 == 0 => 8,
                    (Some(4 | 8), _) => return malformed("a number array has a partial element"),
                    _ => return malformed("a number array has an element size other than 4 or 8"),
                };
                let len = body.len() / width;
                self.v.begin_array(ty, f, len)?;
                for (i, e) in body.chunks_exact(width).enumerate().take(len) {
                    let x = if width == 4 {
                        i64::from(i32::from_le_bytes([e[0], e[1], e[2], e[3]]))
                    } else {
                        i64::from_le_bytes(e.try_into().unwrap_or_default())
                    };
                    self.v.value(ty, f, i + 1, number(f.kind, x))?;
                }
            }
            Kind::Boolean => {
                self.v.begin_array(ty, f, item.len())?;
                for (i, b) in item.iter().enumerate() {
                    self.v.value(ty, f, i + 1, Value::Boolean(*b != 0))?;
                }
            }
            Kind::String | Kind::Binary | Kind::Struct(_) => {
                let len = count_items(item).ok_or(DecodeError::Malformed(
                    "an array element overruns the array",
                ))?;
                self.v.begin_array(ty, f, len)?;
                let mut pos = 0;
                let mut index = 1;
                while pos < item.len() {
                    let sz = le32(item, pos);
                    let e = &item[pos + 4..pos + 4 + sz];
                    pos += 4 + sz;
                    match f.kind {
                        Kind::Struct(sub) => self.decode_sub(ty, f, index, sub, e, depth)?,
                        _ => self.v.value(ty, f, index, Value::Bytes(e))?,
                    }
                    index += 1;
                }
            }
        }
        self.v.end_array(ty, f)
    }
}

/// The number of length-prefixed items filling `b` exactly, if they do.
fn count_items(b: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut n = 0;
    while pos < b.len() {
        if b.len() - pos < 4 {
            return None;
        }
        let sz = le32(b, pos);
        if b.len() - pos - 4 < sz {
            return None;
        }
        pos += 4 + sz;
        n += 1;
    }
    Some(n)
}

#[inline]
fn number(kind: Kind, x: i64) -> Value<'static> {
    match kind {
        Kind::Decimal { scale } => Value::Real(x as f64 / scale as f64),
        Kind::Double => Value::Real(f64::from_bits(x as u64)),
        _ => Value::Integer(x),
    }
}
