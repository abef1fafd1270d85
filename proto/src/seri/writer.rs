//! [`SeriWriter`]: appends seri tokens to a buffer.
//!
//! The writer is deliberately low level: it writes exactly one token per
//! call and keeps no state, so a caller walking its own value representation
//! (for example a Lua table) can drive it without building an intermediate
//! tree. Two things are left to the caller:
//!
//! * depth: refuse values nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH)
//!   with [`PackError::TooDeep`];
//! * table layout: after [`SeriWriter::table_begin`] with `n`, write exactly
//!   `n` array items, then any key/value pairs (never a nil key), then call
//!   [`SeriWriter::table_end`].
//!
//! Width rules follow the reference encoder so that outputs are
//! byte-identical to it.

use bytes::BufMut;

use super::error::PackError;
use super::tag::{self, combine};

/// Appends seri tokens to a [`BufMut`] (a `Vec<u8>` or a `BytesMut`).
#[derive(Debug)]
pub struct SeriWriter<'b, B: BufMut> {
    buf: &'b mut B,
}

impl<'b, B: BufMut> SeriWriter<'b, B> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'b mut B) -> Self {
        SeriWriter { buf }
    }

    /// Writes `nil` (`00`).
    #[inline]
    pub fn nil(&mut self) {
        self.buf.put_u8(combine(tag::TYPE_NIL, 0));
    }

    /// Writes a boolean (`09` true, `01` false).
    #[inline]
    pub fn boolean(&mut self, b: bool) {
        self.buf.put_u8(combine(tag::TYPE_BOOLEAN, u8::from(b)));
    }

    /// Writes an integer in the narrowest form the reference would use, in
    /// this order: 0 has no body; a value outside the i32 range takes an i64;
    /// a negative value an i32; below 0x100 a u8; below 0x10000 a u16;
    /// anything else an i32.
    #[inline]
    pub fn integer(&mut self, v: i64) {
        if v == 0 {
            self.buf.put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_ZERO));
        } else if let Ok(v32) = i32::try_from(v) {
            if v32 < 0 {
                self.buf
                    .put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_DWORD));
                self.buf.put_i32_le(v32);
            } else if let Ok(byte) = u8::try_from(v32) {
                self.buf.put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_BYTE));
                self.buf.put_u8(byte);
            } else if let Ok(word) = u16::try_from(v32) {
                self.buf.put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_WORD));
                self.buf.put_u16_le(word);
            } else {
                self.buf
                    .put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_DWORD));
                self.buf.put_i32_le(v32);
            }
        } else {
            self.buf
                .put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_QWORD));
            self.buf.put_i64_le(v);
        }
    }

    /// Writes a float. Floats always take the 8-byte REAL form, even when
    /// their value is integral; the bits are kept exactly (NaN payloads, -0.0).
    #[inline]
    pub fn real(&mut self, v: f64) {
        self.buf.put_u8(combine(tag::TYPE_NUMBER, tag::NUMBER_REAL));
        self.buf.put_u64_le(v.to_bits());
    }

    /// Writes a lightuserdata (an in-process pointer value, 8 bytes).
    #[inline]
    pub fn pointer(&mut self, p: u64) {
        self.buf.put_u8(combine(tag::TYPE_USERDATA, 0));
        self.buf.put_u64_le(p);
    }

    /// Writes a byte string: below 32 bytes the length is the cookie, below
    /// 65536 a u16 length follows the tag, otherwise a u32 length.
    #[inline]
    pub fn string(&mut self, s: &[u8]) -> Result<(), PackError> {
        let len = s.len();
        if len < usize::from(tag::MAX_COOKIE) {
            // `len` < 32 here, so the conversion is lossless.
            self.buf.put_u8(combine(tag::TYPE_SHORT_STRING, len as u8));
        } else if let Ok(len16) = u16::try_from(len) {
            self.buf
                .put_u8(combine(tag::TYPE_LONG_STRING, tag::LONG_STRING_U16));
            self.buf.put_u16_le(len16);
        } else if let Ok(len32) = u32::try_from(len) {
            self.buf
                .put_u8(combine(tag::TYPE_LONG_STRING, tag::LONG_STRING_U32));
            self.buf.put_u32_le(len32);
        } else {
            return Err(PackError::StringTooLong(len));
        }
        self.buf.put_slice(s);
        Ok(())
    }

    /// Starts a table whose array part has `array_len` items. Below 31 the
    /// size is the cookie; otherwise the tag `fe` is followed by the size
    /// written as an integer.
    #[inline]
    pub fn table_begin(&mut self, array_len: usize) {
        match u8::try_from(array_len) {
            Ok(n) if n < tag::COOKIE_ARRAY_SIZE_FOLLOWS => {
                self.buf.put_u8(combine(tag::TYPE_TABLE, n));
            }
            _ => {
                self.buf
                    .put_u8(combine(tag::TYPE_TABLE, tag::COOKIE_ARRAY_SIZE_FOLLOWS));
                self.integer(i64::try_from(array_len).unwrap_or(i64::MAX));
            }
        }
    }

    /// Ends a table: the nil key (`00`).
    #[inline]
    pub fn table_end(&mut self) {
        self.nil();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(f: impl FnOnce(&mut SeriWriter<'_, Vec<u8>>)) -> String {
        let mut v = Vec::new();
        f(&mut SeriWriter::new(&mut v));
        v.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn integers() {
        let cases: &[(i64, &str)] = &[
            (0, "02"),
            (1, "0a01"),
            (255, "0aff"),
            (256, "120001"),
            (65535, "12ffff"),
            (65536, "2200000100"),
            (0x7fff_ffff, "22ffffff7f"),
            (0x8000_0000, "320000008000000000"),
            (-1, "22ffffffff"),
            (-2_147_483_648, "2200000080"),
            (-2_147_483_649, "32ffffff7fffffffff"),
            (i64::MAX, "32ffffffffffffff7f"),
            (i64::MIN, "320000000000000080"),
        ];
        for &(v, want) in cases {
            assert_eq!(hex(|w| w.integer(v)), want, "{v}");
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(hex(|w| w.nil()), "00");
        assert_eq!(hex(|w| w.boolean(true)), "09");
        assert_eq!(hex(|w| w.boolean(false)), "01");
        assert_eq!(hex(|w| w.real(1.0)), "42000000000000f03f");
        assert_eq!(hex(|w| w.real(-0.0)), "420000000000000080");
        assert_eq!(hex(|w| w.pointer(0)), "030000000000000000");
    }

    #[test]
    fn strings() {
        assert_eq!(hex(|w| w.string(b"").unwrap()), "04");
        assert_eq!(hex(|w| w.string(b"abc").unwrap()), "1c616263");
        let s31 = hex(|w| w.string(&[b'x'; 31]).unwrap());
        assert!(s31.starts_with("fc78"));
        let s32 = hex(|w| w.string(&[b'x'; 32]).unwrap());
        assert!(s32.starts_with("15200078"));
        let s64k = hex(|w| w.string(&vec![b'x'; 65536]).unwrap());
        assert!(s64k.starts_with("250000010078"));
    }

    #[test]
    fn tables() {
        assert_eq!(
            hex(|w| {
                w.table_begin(0);
                w.table_end();
            }),
            "0600"
        );
        assert_eq!(hex(|w| w.table_begin(30)), "f6");
        assert_eq!(hex(|w| w.table_begin(31)), "fe0a1f");
        assert_eq!(hex(|w| w.table_begin(300)), "fe122c01");
    }
}
