//! Errors of the seri format.
//!
//! The texts are the reference implementation's, so that a Lua-facing layer
//! can raise them unchanged.

/// Why a value could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// A value nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("serialize can't pack too depth table")]
    TooDeep,
    /// A value of a type the format cannot carry (function, thread, full
    /// userdata); the payload is the Lua type name.
    #[error("Unsupport type {0} to serialize")]
    Unsupported(String),
    /// A string whose length does not fit the u32 length field.
    #[error("string of {0} bytes is too long to serialize")]
    StringTooLong(usize),
    /// A table pair with a nil key (it would end the table early).
    #[error("table index is nil")]
    NilKey,
    /// A table pair with a NaN key (the reference decoder rejects it).
    #[error("table index is NaN")]
    NanKey,
}

/// Which consistency check of the decoder failed.
///
/// Each check is identified, in messages, by the line number the reference
/// decoder reports for it; [`Check::line`] gives that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// The u8 body of a BYTE integer is missing.
    TruncatedU8,
    /// The u16 body of a WORD integer is incomplete.
    TruncatedU16,
    /// The i32 body of a DWORD integer is incomplete.
    TruncatedI32,
    /// The i64 body of a QWORD integer is incomplete.
    TruncatedI64,
    /// A number tag with a cookie other than 0, 1, 2, 4, 6 or 8.
    NumberCookie,
    /// The f64 body of a REAL is incomplete.
    TruncatedReal,
    /// The 8-byte body of a lightuserdata is incomplete.
    TruncatedPointer,
    /// A string body is shorter than its length says.
    TruncatedString,
    /// A table tag announcing a separate array size, with nothing after it.
    ArraySizeMissing,
    /// The separate array size is not an integer number tag.
    ArraySizeNotInteger,
    /// The u16 length of a long string is incomplete.
    TruncatedLength16,
    /// A long-string tag with a cookie other than 2 or 4.
    LongStringCookie,
    /// The u32 length of a long string is incomplete.
    TruncatedLength32,
    /// A tag of type 7.
    InvalidType,
    /// The input ended where a value was required (table items, a pair, or
    /// the nil that ends a table).
    MissingValue,
}

impl Check {
    /// The line number the reference decoder reports for this check.
    pub const fn line(self) -> u32 {
        match self {
            Check::TruncatedU8 => 378,
            Check::TruncatedU16 => 386,
            Check::TruncatedI32 => 394,
            Check::TruncatedI64 => 402,
            Check::NumberCookie => 407,
            Check::TruncatedReal => 417,
            Check::TruncatedPointer => 427,
            Check::TruncatedString => 437,
            Check::ArraySizeMissing => 450,
            Check::ArraySizeNotInteger => 455,
            Check::TruncatedLength16 => 503,
            Check::LongStringCookie => 510,
            Check::TruncatedLength32 => 514,
            Check::InvalidType => 527,
            Check::MissingValue => 538,
        }
    }
}

/// Why a byte string could not be unpacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stream is malformed. `remaining` is the number of unread bytes at
    /// the failure: the tag and every field read before it are consumed.
    #[error("Invalid serialize stream {remaining} (line:{line})", line = check.line())]
    Invalid {
        /// Unread bytes when the check failed.
        remaining: usize,
        /// The failed check.
        check: Check,
    },
    /// A table key is a float NaN (raised while building owned values; the
    /// token reader leaves this to its caller).
    #[error("table index is NaN")]
    NanKey,
    /// Tables nest deeper than the owned decoder accepts
    /// ([`MAX_DECODE_DEPTH`](super::MAX_DECODE_DEPTH)).
    #[error("serialize stream nests tables deeper than {limit} levels")]
    TooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl DecodeError {
    /// The failed check, for a malformed stream.
    pub fn check(&self) -> Option<Check> {
        match self {
            DecodeError::Invalid { check, .. } => Some(*check),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let e = DecodeError::Invalid {
            remaining: 2,
            check: Check::TruncatedString,
        };
        assert_eq!(e.to_string(), "Invalid serialize stream 2 (line:437)");
        assert_eq!(e.check(), Some(Check::TruncatedString));
        assert_eq!(DecodeError::NanKey.to_string(), "table index is NaN");
        assert_eq!(
            PackError::TooDeep.to_string(),
            "serialize can't pack too depth table"
        );
        assert_eq!(
            PackError::Unsupported("function".into()).to_string(),
            "Unsupport type function to serialize"
        );
    }
}
