//! Tag byte arithmetic: the low 3 bits of a tag are the value type, the high
//! 5 bits its "cookie".

/// Type 0: nil.
pub const TYPE_NIL: u8 = 0;
/// Type 1: boolean; the cookie is the value.
pub const TYPE_BOOLEAN: u8 = 1;
/// Type 2: number; the cookie says which width follows.
pub const TYPE_NUMBER: u8 = 2;
/// Type 3: lightuserdata, an 8-byte pointer value.
pub const TYPE_USERDATA: u8 = 3;
/// Type 4: string shorter than [`MAX_COOKIE`]; the cookie is the length.
pub const TYPE_SHORT_STRING: u8 = 4;
/// Type 5: string with an explicit u16 or u32 length.
pub const TYPE_LONG_STRING: u8 = 5;
/// Type 6: table; the cookie is the array size or [`COOKIE_ARRAY_SIZE_FOLLOWS`].
pub const TYPE_TABLE: u8 = 6;

/// Number cookie: the integer 0, no body.
pub const NUMBER_ZERO: u8 = 0;
/// Number cookie: u8 body.
pub const NUMBER_BYTE: u8 = 1;
/// Number cookie: u16 body.
pub const NUMBER_WORD: u8 = 2;
/// Number cookie: i32 body (signed).
pub const NUMBER_DWORD: u8 = 4;
/// Number cookie: i64 body.
pub const NUMBER_QWORD: u8 = 6;
/// Number cookie: f64 body.
pub const NUMBER_REAL: u8 = 8;

/// Long-string cookie: a u16 length follows.
pub const LONG_STRING_U16: u8 = 2;
/// Long-string cookie: a u32 length follows.
pub const LONG_STRING_U32: u8 = 4;

/// Number of distinct cookies (5 bits).
pub const MAX_COOKIE: u8 = 32;
/// Table cookie meaning "the array size follows as a number value".
pub const COOKIE_ARRAY_SIZE_FOLLOWS: u8 = MAX_COOKIE - 1;

/// Builds a tag byte. `cookie` must be below [`MAX_COOKIE`].
pub const fn combine(ty: u8, cookie: u8) -> u8 {
    ty | (cookie << 3)
}

/// Splits a tag byte into `(type, cookie)`.
pub const fn split(tag: u8) -> (u8, u8) {
    (tag & 7, tag >> 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for tag in 0..=255u8 {
            let (ty, cookie) = split(tag);
            assert_eq!(combine(ty, cookie), tag);
        }
        assert_eq!(combine(TYPE_TABLE, COOKIE_ARRAY_SIZE_FOLLOWS), 0xfe);
        assert_eq!(combine(TYPE_NUMBER, NUMBER_REAL), 0x42);
        assert_eq!(combine(TYPE_LONG_STRING, LONG_STRING_U16), 0x15);
    }
}
