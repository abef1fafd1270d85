//! [`Value`]: an owned seri value, with [`pack`] and [`unpack`] for whole
//! messages.
//!
//! A [`Value::Table`] is a faithful record of what is on the wire: the array
//! part as sent (nil items included, they mark empty slots) and the key/value
//! pairs in stream order. Packing it again writes the same layout, so any
//! stream the reference encoder produced for a table without two or more hash
//! keys round-trips byte for byte. Applying the array items to keys `1..=n`
//! and then the pairs in order, with Lua's assignment rules (a nil value
//! removes the key, a later pair overrides an earlier one, an integral float
//! key is the integer), gives the table the reference decoder builds.
//!
//! Floats compare by bit pattern, so NaN payloads and `-0.0` are preserved and
//! comparable.

use bytes::BufMut;

use super::error::{DecodeError, PackError};
use super::reader::{Item, SeriReader};
use super::writer::SeriWriter;
use super::MAX_DEPTH;

/// The deepest table nesting [`unpack`] builds. The reference encoder never
/// produces more than [`MAX_DEPTH`] + 1 nested tables; the limit only keeps a
/// hostile input from exhausting the stack.
pub const MAX_DECODE_DEPTH: usize = 512;

/// An owned seri value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `nil`.
    Nil,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// A lightuserdata (an in-process pointer value).
    Pointer(u64),
    /// A byte string.
    String(Vec<u8>),
    /// A table: array part, then key/value pairs in stream order.
    Table {
        /// Items for keys `1..=array.len()`; `Nil` marks an empty slot.
        array: Vec<Value>,
        /// The other pairs, in stream order.
        hash: Vec<(Value, Value)>,
    },
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Boolean(a), Value::Boolean(b)) => a == b,
            (Value::Integer(a), Value::Integer(b)) => a == b,
            (Value::Real(a), Value::Real(b)) => a.to_bits() == b.to_bits(),
            (Value::Pointer(a), Value::Pointer(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (
                Value::Table {
                    array: a1,
                    hash: h1,
                },
                Value::Table {
                    array: a2,
                    hash: h2,
                },
            ) => a1 == a2 && h1 == h2,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Value {
    /// An empty table.
    pub fn table() -> Self {
        Value::Table {
            array: Vec::new(),
            hash: Vec::new(),
        }
    }

    /// A string value from anything byte-like.
    pub fn string(s: impl AsRef<[u8]>) -> Self {
        Value::String(s.as_ref().to_vec())
    }

    /// Whether this is `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The integer, if this is one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Appends this value to `w`. `depth` is the depth of this value (0 for
    /// a top-level argument); values deeper than [`MAX_DEPTH`] are refused.
    pub fn write_to<B: BufMut>(
        &self,
        w: &mut SeriWriter<'_, B>,
        depth: usize,
    ) -> Result<(), PackError> {
        if depth > MAX_DEPTH {
            return Err(PackError::TooDeep);
        }
        match self {
            Value::Nil => w.nil(),
            Value::Boolean(b) => w.boolean(*b),
            Value::Integer(i) => w.integer(*i),
            Value::Real(r) => w.real(*r),
            Value::Pointer(p) => w.pointer(*p),
            Value::String(s) => w.string(s)?,
            Value::Table { array, hash } => {
                w.table_begin(array.len());
                for item in array {
                    item.write_to(w, depth + 1)?;
                }
                for (k, v) in hash {
                    match k {
                        Value::Nil => return Err(PackError::NilKey),
                        Value::Real(r) if r.is_nan() => return Err(PackError::NanKey),
                        _ => {}
                    }
                    k.write_to(w, depth + 1)?;
                    v.write_to(w, depth + 1)?;
                }
                w.table_end();
            }
        }
        Ok(())
    }

    /// Builds the value that starts with `first`, reading the rest of it (a
    /// table's contents) from `reader`. `depth` is the depth of this value.
    pub fn read_from(
        first: Item<'_>,
        reader: &mut SeriReader<'_>,
        depth: usize,
    ) -> Result<Value, DecodeError> {
        Ok(match first {
            Item::Nil => Value::Nil,
            Item::Boolean(b) => Value::Boolean(b),
            Item::Integer(i) => Value::Integer(i),
            Item::Real(r) => Value::Real(r),
            Item::Pointer(p) => Value::Pointer(p),
            Item::String(s) => Value::String(s.to_vec()),
            Item::Table { array_len } => {
                if depth >= MAX_DECODE_DEPTH {
                    return Err(DecodeError::TooDeep {
                        limit: MAX_DECODE_DEPTH,
                    });
                }
                let n = usize::try_from(array_len).unwrap_or(0);
                // Every item takes at least one byte, so the input bounds
                // what is worth reserving.
                let mut array = Vec::with_capacity(n.min(reader.remaining()));
                for _ in 0..n {
                    let item = reader.read()?;
                    array.push(Value::read_from(item, reader, depth + 1)?);
                }
                let mut hash = Vec::new();
                loop {
                    let key = reader.read()?;
                    if key.is_nil() {
                        break;
                    }
                    let key = Value::read_from(key, reader, depth + 1)?;
                    let value = reader.read()?;
                    let value = Value::read_from(value, reader, depth + 1)?;
                    if matches!(key, Value::Real(r) if r.is_nan()) {
                        return Err(DecodeError::NanKey);
                    }
                    hash.push((key, value));
                }
                Value::Table { array, hash }
            }
        })
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<f64> for Value {
    fn from(r: f64) -> Self {
        Value::Real(r)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(s: Vec<u8>) -> Self {
        Value::String(s)
    }
}

/// Packs `values` as one message (what `skynet.packstring(...)` returns).
pub fn pack(values: &[Value]) -> Result<Vec<u8>, PackError> {
    let mut out = Vec::new();
    let mut w = SeriWriter::new(&mut out);
    for v in values {
        v.write_to(&mut w, 0)?;
    }
    Ok(out)
}

/// Unpacks every value of a message (what `skynet.unpack` returns). Any
/// error rejects the whole input.
pub fn unpack(input: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut reader = SeriReader::new(input);
    let mut values = Vec::new();
    while let Some(first) = reader.next_item()? {
        values.push(Value::read_from(first, &mut reader, 0)?);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(levels: usize, inner: Value) -> Value {
        (0..levels).fold(inner, |v, _| Value::Table {
            array: vec![v],
            hash: Vec::new(),
        })
    }

    #[test]
    fn depth_limit_matches_reference() {
        assert!(pack(&[nest(32, Value::Integer(1))]).is_ok());
        assert!(pack(&[nest(32, Value::table())]).is_ok());
        assert_eq!(
            pack(&[nest(33, Value::Integer(1))]),
            Err(PackError::TooDeep)
        );
        assert_eq!(pack(&[nest(33, Value::table())]), Err(PackError::TooDeep));
    }

    #[test]
    fn bad_keys_are_refused() {
        let nil_key = Value::Table {
            array: vec![],
            hash: vec![(Value::Nil, Value::Integer(1))],
        };
        assert_eq!(pack(&[nil_key]), Err(PackError::NilKey));
        let nan_key = Value::Table {
            array: vec![],
            hash: vec![(Value::Real(f64::NAN), Value::Integer(1))],
        };
        assert_eq!(pack(&[nan_key]), Err(PackError::NanKey));
    }

    #[test]
    fn decode_depth_is_bounded() {
        let mut deep = vec![0x0e; MAX_DECODE_DEPTH + 10];
        deep.push(0x02);
        deep.extend(std::iter::repeat_n(0u8, MAX_DECODE_DEPTH + 10));
        assert_eq!(
            unpack(&deep),
            Err(DecodeError::TooDeep {
                limit: MAX_DECODE_DEPTH
            })
        );
        let mut ok = vec![0x0e; MAX_DECODE_DEPTH];
        ok.push(0x02);
        ok.extend(std::iter::repeat_n(0u8, MAX_DECODE_DEPTH));
        assert_eq!(unpack(&ok).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn huge_declared_array_does_not_preallocate() {
        // fe + QWORD 0x7fffffff items, then nothing.
        let input = [0xfe, 0x22, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(
            unpack(&input).map_err(|e| e.to_string()),
            Err("Invalid serialize stream 0 (line:538)".to_string())
        );
    }

    #[test]
    fn round_trip() {
        let v = vec![
            Value::from("hello"),
            Value::Table {
                array: vec![Value::Integer(1), Value::Nil, Value::Real(f64::NAN)],
                hash: vec![(Value::from("x"), Value::Boolean(true))],
            },
            Value::Pointer(0xdead_beef),
            Value::Nil,
        ];
        let bytes = pack(&v).unwrap();
        assert_eq!(unpack(&bytes).unwrap(), v);
    }
}
