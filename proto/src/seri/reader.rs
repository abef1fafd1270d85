//! [`SeriReader`]: reads seri tokens from a byte slice.
//!
//! The reader hands out one [`Item`] per call. Scalars are complete tokens;
//! a table is announced by [`Item::Table`] and its contents follow as further
//! tokens, which the caller reads itself:
//!
//! 1. `array_len` array items (none when `array_len` is 0 or negative);
//!    a nil item leaves its slot empty;
//! 2. key/value pairs, each two values;
//! 3. a nil key, which ends the table.
//!
//! The reader accepts everything the reference decoder accepts: integers in
//! wider forms than needed, any non-zero boolean cookie as true, any nil
//! cookie, the long-string forms for short strings, and a separate array size
//! of any integer width (truncated to 32 bits, as the reference stores it in a
//! C `int`). On failure it reports the same check and the same count of unread
//! bytes as the reference; see [`Check`].
//!
//! Reading never copies: strings borrow from the input.

use super::error::{Check, DecodeError};
use super::tag;

/// One token of a seri stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// `nil`.
    Nil,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// A lightuserdata (pointer value).
    Pointer(u64),
    /// A byte string, borrowed from the input.
    String(&'a [u8]),
    /// The start of a table. Its array items, key/value pairs and ending nil
    /// key follow as further tokens. A negative size means no array items.
    Table {
        /// Declared array size, as the reference keeps it (a 32-bit int).
        array_len: i32,
    },
}

impl Item<'_> {
    /// Whether this token is nil (it ends a table when read as a key).
    pub fn is_nil(&self) -> bool {
        matches!(self, Item::Nil)
    }
}

/// Reads seri tokens from a byte slice.
#[derive(Debug, Clone)]
pub struct SeriReader<'a> {
    rest: &'a [u8],
}

impl<'a> SeriReader<'a> {
    /// A reader over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        SeriReader { rest: input }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Number of unread bytes.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Reads the next top-level value's first token, or `None` at the end of
    /// the input. This is how a whole message is walked: call it until it
    /// returns `None`.
    #[inline]
    pub fn next_item(&mut self) -> Result<Option<Item<'a>>, DecodeError> {
        if self.rest.is_empty() {
            Ok(None)
        } else {
            self.read().map(Some)
        }
    }

    /// Reads one token where a value is required (inside a table, or an
    /// argument that must be there). The end of the input is an error
    /// ([`Check::MissingValue`]).
    #[inline]
    pub fn read(&mut self) -> Result<Item<'a>, DecodeError> {
        self.read_inlined()
    }

    /// [`read`](Self::read), always inlined: for a hot decoding loop, where
    /// returning the token through memory costs more than the code size.
    /// Recursive callers pay for it in stack per level, even in debug builds.
    #[inline(always)]
    pub fn read_inlined(&mut self) -> Result<Item<'a>, DecodeError> {
        let tag = self.take_u8(Check::MissingValue)?;
        let (ty, cookie) = tag::split(tag);
        match ty {
            tag::TYPE_NIL => Ok(Item::Nil),
            tag::TYPE_BOOLEAN => Ok(Item::Boolean(cookie != 0)),
            tag::TYPE_NUMBER if cookie == tag::NUMBER_REAL => {
                let bits = self.take_array::<8>(Check::TruncatedReal)?;
                Ok(Item::Real(f64::from_le_bytes(bits)))
            }
            tag::TYPE_NUMBER => self.integer_body(cookie).map(Item::Integer),
            tag::TYPE_USERDATA => {
                let bytes = self.take_array::<8>(Check::TruncatedPointer)?;
                Ok(Item::Pointer(u64::from_le_bytes(bytes)))
            }
            tag::TYPE_SHORT_STRING => self.string_body(usize::from(cookie)),
            tag::TYPE_LONG_STRING => {
                let len = match cookie {
                    tag::LONG_STRING_U16 => usize::from(u16::from_le_bytes(
                        self.take_array::<2>(Check::TruncatedLength16)?,
                    )),
                    tag::LONG_STRING_U32 => {
                        let n = u32::from_le_bytes(self.take_array::<4>(Check::TruncatedLength32)?);
                        // A length the address space cannot hold is certainly
                        // longer than the input.
                        usize::try_from(n).unwrap_or(usize::MAX)
                    }
                    _ => return Err(self.invalid(Check::LongStringCookie)),
                };
                self.string_body(len)
            }
            tag::TYPE_TABLE => {
                let array_len = if cookie == tag::COOKIE_ARRAY_SIZE_FOLLOWS {
                    self.array_size()?
                } else {
                    i32::from(cookie)
                };
                Ok(Item::Table { array_len })
            }
            _ => Err(self.invalid(Check::InvalidType)),
        }
    }

    /// Reads the separate array size that follows a `fe` table tag.
    fn array_size(&mut self) -> Result<i32, DecodeError> {
        let size_tag = self.take_u8(Check::ArraySizeMissing)?;
        let (ty, cookie) = tag::split(size_tag);
        if ty != tag::TYPE_NUMBER || cookie == tag::NUMBER_REAL {
            return Err(self.invalid(Check::ArraySizeNotInteger));
        }
        // The reference keeps only the low 32 bits, as a signed int.
        Ok(self.integer_body(cookie)? as i32)
    }

    #[inline]
    fn integer_body(&mut self, cookie: u8) -> Result<i64, DecodeError> {
        match cookie {
            tag::NUMBER_ZERO => Ok(0),
            tag::NUMBER_BYTE => self.take_u8(Check::TruncatedU8).map(i64::from),
            tag::NUMBER_WORD => self
                .take_array::<2>(Check::TruncatedU16)
                .map(|b| i64::from(u16::from_le_bytes(b))),
            tag::NUMBER_DWORD => self
                .take_array::<4>(Check::TruncatedI32)
                .map(|b| i64::from(i32::from_le_bytes(b))),
            tag::NUMBER_QWORD => self
                .take_array::<8>(Check::TruncatedI64)
                .map(i64::from_le_bytes),
            _ => Err(self.invalid(Check::NumberCookie)),
        }
    }

    #[inline]
    fn string_body(&mut self, len: usize) -> Result<Item<'a>, DecodeError> {
        if self.rest.len() < len {
            return Err(self.invalid(Check::TruncatedString));
        }
        let (s, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(Item::String(s))
    }

    #[inline]
    fn take_u8(&mut self, check: Check) -> Result<u8, DecodeError> {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                Ok(b)
            }
            None => Err(self.invalid(check)),
        }
    }

    #[inline]
    fn take_array<const N: usize>(&mut self, check: Check) -> Result<[u8; N], DecodeError> {
        match self.rest.split_first_chunk::<N>() {
            Some((bytes, rest)) => {
                self.rest = rest;
                Ok(*bytes)
            }
            None => Err(self.invalid(check)),
        }
    }

    fn invalid(&self, check: Check) -> DecodeError {
        DecodeError::Invalid {
            remaining: self.rest.len(),
            check,
        }
    }
}
