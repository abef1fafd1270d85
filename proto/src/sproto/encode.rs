//! Struct encoding driven by the schema, reading values from an
//! [`EncodeSource`].
//!
//! The encoder walks the fields of a type in tag order and asks the source
//! for each value; the source (a Lua table reader, a Rust value model) knows
//! nothing of the wire format. Output is appended to a caller's `Vec<u8>`,
//! which can be reused from one message to the next.

use super::schema::{Field, Kind, Schema, Type};
use std::fmt;

/// Deepest struct nesting an encoding or decoding may have.
pub const MAX_DEPTH: usize = 64;

/// Largest encoding (and largest pack or unpack output), as in skynet.
pub const MAX_SIZE: usize = 0x100_0000;

/// Encoding limits that were passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    TooDeep,
    TooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooDeep => f.write_str("The table is too deep"),
            EncodeError::TooLarge => write!(f, "object is too large (>{MAX_SIZE})"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Which half of a map entry (`*T()`) the encoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Key,
    Value,
}

/// Where the encoder reads values from.
///
/// The source keeps a "current value": [`field`](Self::field),
/// [`next_element`](Self::next_element) and [`entry_part`](Self::entry_part)
/// make one current, and the typed readers (`integer`, `number`, `boolean`,
/// `string`) consume it. `begin_struct` turns the current value into the
/// struct whose fields `field` reads, until `end_struct`; `begin_array` turns
/// it into the container that `next_element` walks, until `end_array`.
/// `index` is 0 for a plain field and 1, 2, ... for array elements (error
/// messages).
pub trait EncodeSource {
    type Error: From<EncodeError>;

    /// Makes field `f` of the current struct current; `false` when it is
    /// absent (nothing is made current).
    fn field(&mut self, ty: &Type, f: &Field) -> Result<bool, Self::Error>;
    /// Within a map entry (after `next_element` on a map field): makes its
    /// key or value current.
    fn entry_part(&mut self, part: Part);
    /// Ends the map entry that `next_element` started.
    fn end_entry(&mut self);
    fn integer(&mut self, ty: &Type, f: &Field, index: usize) -> Result<i64, Self::Error>;
    fn number(&mut self, ty: &Type, f: &Field, index: usize) -> Result<f64, Self::Error>;
    fn boolean(&mut self, ty: &Type, f: &Field, index: usize) -> Result<bool, Self::Error>;
    /// Appends the current string's bytes to `out`.
    fn string(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Self::Error>;
    fn begin_struct(&mut self, ty: &Type, f: &Field, index: usize) -> Result<(), Self::Error>;
    fn end_struct(&mut self);
    fn begin_array(&mut self, ty: &Type, f: &Field) -> Result<(), Self::Error>;
    /// Makes element `index` current (for `*T(key)` and `*T()` fields: the
    /// next pair of the container, in its iteration order; a map entry makes
    /// both its key and value available to `entry_part`). `false` at the end.
    fn next_element(&mut self, ty: &Type, f: &Field, index: usize) -> Result<bool, Self::Error>;
    fn end_array(&mut self);
}

struct Encoder<'a, S> {
    schema: &'a Schema,
    src: &'a mut S,
    out: &'a mut Vec<u8>,
    /// `out.len()` may not pass this.
    limit: usize,
}

/// Encodes a value of type `ty` (an index into `schema.types`) read from
/// `src`, appending it to `out`.
pub fn encode<S: EncodeSource>(
    schema: &Schema,
    ty: usize,
    src: &mut S,
    out: &mut Vec<u8>,
) -> Result<(), S::Error> {
    let limit = out.len() + MAX_SIZE;
    let mut e = Encoder {
        schema,
        src,
        out,
        limit,
    };
    e.encode_struct(&schema.types[ty], 0, false)?;
    e.check_size()
}

#[inline]
fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

impl<S: EncodeSource> Encoder<'_, S> {
    #[inline]
    fn check_size(&self) -> Result<(), S::Error> {
        if self.out.len() > self.limit {
            return Err(EncodeError::TooLarge.into());
        }
        Ok(())
    }

    /// Reserves a data item's length prefix; returns where it is.
    #[inline]
    fn open_item(&mut self) -> usize {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        at
    }

    #[inline]
    fn close_item(&mut self, at: usize) -> Result<(), S::Error> {
        self.check_size()?;
        let len = (self.out.len() - at - 4) as u32;
        put_u32(self.out, at, len);
        Ok(())
    }

    /// An integer field: the inline word, or 0 after appending a data item.
    #[inline]
    fn integer_item(&mut self, v: i64) -> u16 {
        if (0..0x7fff).contains(&v) {
            return ((v + 1) * 2) as u16;
        }
        if v == i64::from(v as i32) {
            self.out.extend_from_slice(&4u32.to_le_bytes());
            self.out.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            self.out.extend_from_slice(&8u32.to_le_bytes());
            self.out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        0
    }

    fn encode_struct(&mut self, ty: &Type, depth: usize, entry: bool) -> Result<(), S::Error> {
        if ty.fields.is_empty() {
            self.out.extend_from_slice(&[0, 0]);
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Err(EncodeError::TooDeep.into());
        }
        let start = self.out.len();
        let header = 2 + 2 * ty.maxn;
        self.out.resize(start + header, 0);
        let mut words = 0usize;
        let mut last: i32 = -1;
        for (i, f) in ty.fields.iter().enumerate() {
            let present = if entry {
                match i {
                    0 => {
                        self.src.entry_part(Part::Key);
                        true
                    }
                    1 => {
                        self.src.entry_part(Part::Value);
                        true
                    }
                    _ => false,
                }
            } else {
                self.src.field(ty, f)?
            };
            if !present {
                continue;
            }
            let word = if f.array {
                self.encode_array(ty, f, depth)?;
                0
            } else {
                self.encode_scalar(ty, f, 0, depth)?
            };
            let gap = i32::from(f.tag) - last - 1;
            if gap > 0 {
                let skip = ((gap - 1) * 2 + 1) as u16;
                let at = start + 2 + 2 * words;
                self.out[at..at + 2].copy_from_slice(&skip.to_le_bytes());
                words += 1;
            }
            let at = start + 2 + 2 * words;
            self.out[at..at + 2].copy_from_slice(&word.to_le_bytes());
            words += 1;
            last = i32::from(f.tag);
        }
        self.out[start..start + 2].copy_from_slice(&(words as u16).to_le_bytes());
        if words < ty.maxn {
            let used = start + 2 + 2 * words;
            self.out.copy_within(start + header.., used);
            let len = self.out.len() - (header - 2 - 2 * words);
            self.out.truncate(len);
        }
        Ok(())
    }

    /// One non-array value; returns its inline word (0 for a data item).
    #[inline]
    fn encode_scalar(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        depth: usize,
    ) -> Result<u16, S::Error> {
        Ok(match f.kind {
            Kind::Integer => {
                let v = self.src.integer(ty, f, index)?;
                self.integer_item(v)
            }
            Kind::Decimal { scale } => {
                let v = self.src.number(ty, f, index)?;
                self.integer_item(decimal(v, scale))
            }
            Kind::Boolean => {
                if self.src.boolean(ty, f, index)? {
                    4
                } else {
                    2
                }
            }
            Kind::Double => {
                let v = self.src.number(ty, f, index)?;
                self.out.extend_from_slice(&8u32.to_le_bytes());
                self.out.extend_from_slice(&v.to_bits().to_le_bytes());
                0
            }
            Kind::String | Kind::Binary => {
                let at = self.open_item();
                self.src.string(ty, f, index, self.out)?;
                self.close_item(at)?;
                0
            }
            Kind::Struct(sub) => {
                let at = self.open_item();
                self.src.begin_struct(ty, f, index)?;
                self.encode_struct(&self.schema.types[sub], depth + 1, false)?;
                self.src.end_struct();
                self.close_item(at)?;
                0
            }
        })
    }

    fn encode_array(&mut self, ty: &Type, f: &Field, depth: usize) -> Result<(), S::Error> {
        let at = self.open_item();
        self.src.begin_array(ty, f)?;
        match f.kind {
            Kind::Integer | Kind::Decimal { .. } | Kind::Double => {
                self.encode_number_array(ty, f)?
            }
            Kind::Boolean => {
                let mut index = 1;
                while self.src.next_element(ty, f, index)? {
                    let b = self.src.boolean(ty, f, index)?;
                    self.out.push(u8::from(b));
                    index += 1;
                    self.check_size()?;
                }
            }
            Kind::String | Kind::Binary => {
                let mut index = 1;
                while self.src.next_element(ty, f, index)? {
                    let item = self.open_item();
                    self.src.string(ty, f, index, self.out)?;
                    self.close_item(item)?;
                    index += 1;
                }
            }
            Kind::Struct(sub) => {
                let sub = &self.schema.types[sub];
                let mut index = 1;
                while self.src.next_element(ty, f, index)? {
                    let item = self.open_item();
                    if f.map {
                        self.encode_struct(sub, depth + 1, true)?;
                        self.src.end_entry();
                    } else {
                        self.src.begin_struct(ty, f, index)?;
                        self.encode_struct(sub, depth + 1, false)?;
                        self.src.end_struct();
                    }
                    self.close_item(item)?;
                    index += 1;
                }
            }
        }
        self.src.end_array();
        self.close_item(at)
    }

    /// Integers are 4 bytes each unless one needs 8, then all take 8; doubles
    /// take 8. A size byte leads; an empty array has no bytes at all.
    fn encode_number_array(&mut self, ty: &Type, f: &Field) -> Result<(), S::Error> {
        let head = self.out.len();
        self.out.push(0);
        let mut width = if f.kind == Kind::Double { 8 } else { 4 };
        let mut index = 1;
        while self.src.next_element(ty, f, index)? {
            let bits: u64 = match f.kind {
                Kind::Double => self.src.number(ty, f, index)?.to_bits(),
                Kind::Decimal { scale } => decimal(self.src.number(ty, f, index)?, scale) as u64,
                _ => self.src.integer(ty, f, index)? as u64,
            };
            let v = bits as i64;
            if width == 4 && v != i64::from(v as i32) {
                self.widen(head, index - 1);
                width = 8;
            }
            if width == 4 {
                self.out.extend_from_slice(&(v as u32).to_le_bytes());
            } else {
                self.out.extend_from_slice(&bits.to_le_bytes());
            }
            index += 1;
            self.check_size()?;
        }
        if index == 1 {
            self.out.truncate(head);
        } else {
            self.out[head] = width as u8;
        }
        Ok(())
    }

    /// Rewrites `n` 4-byte integers after the size byte at `head` as 8-byte ones.
    fn widen(&mut self, head: usize, n: usize) {
        let first = head + 1;
        self.out.resize(first + 8 * n, 0);
        for i in (0..n).rev() {
            let mut w = [0u8; 4];
            w.copy_from_slice(&self.out[first + 4 * i..first + 4 * i + 4]);
            let v = i64::from(i32::from_le_bytes(w));
            self.out[first + 8 * i..first + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// `integer(n)`: the number scaled and rounded half away from zero.
#[inline]
pub fn decimal(v: f64, scale: i64) -> i64 {
    (v * scale as f64).round() as i64
}
