//! The `skynet.pack` value format ("seri").
//!
//! A packed message is a plain run of values with no header and no count; a
//! reader takes values until the input is used up. Each value is one tag byte
//! (`type | cookie << 3`) and a body whose shape depends on the type. All
//! multi-byte numbers are little-endian.
//!
//! | type | value         | cookie                                          | body                         |
//! |------|---------------|-------------------------------------------------|------------------------------|
//! | 0    | nil           | ignored                                         | none                         |
//! | 1    | boolean       | 0 false, anything else true                     | none                         |
//! | 2    | number        | 0 zero, 1 u8, 2 u16, 4 i32, 6 i64, 8 f64        | 0, 1, 2, 4, 8 or 8 bytes     |
//! | 3    | lightuserdata | 0                                               | 8-byte pointer value         |
//! | 4    | short string  | the length, 0..=31                              | the bytes                    |
//! | 5    | long string   | 2: u16 length follows, 4: u32 length follows    | length, then the bytes       |
//! | 6    | table         | array size 0..=30, or 31: size follows as a number value | array items, key/value pairs, a nil key |
//! | 7    | invalid       |                                                 |                              |
//!
//! The pieces:
//!
//! * [`tag`] — the type and cookie constants and the tag byte arithmetic.
//! * [`writer`] — [`SeriWriter`], which appends one token at a time. It is what
//!   a Lua binding drives while it walks a Lua value.
//! * [`reader`] — [`SeriReader`], which hands out one [`Item`] token at a time,
//!   borrowing strings from the input. It is as lenient as the reference
//!   decoder and fails with the same messages.
//! * [`value`] — the owned [`Value`] tree with [`pack`] and [`unpack`], for
//!   Rust code (master packets, tests) that wants whole values.
//! * [`error`] — [`PackError`] and [`DecodeError`], whose texts match the
//!   reference implementation's.

pub mod error;
pub mod reader;
pub mod tag;
pub mod value;
pub mod writer;

pub use error::{Check, DecodeError, PackError};
pub use reader::{Item, SeriReader};
pub use value::{pack, unpack, Value, MAX_DECODE_DEPTH};
pub use writer::SeriWriter;

/// The deepest nesting the packer accepts: a value whose depth is greater
/// than this is refused with [`PackError::TooDeep`]. Top-level values are at
/// depth 0 and the contents of a table at depth `d` are at depth `d + 1`.
pub const MAX_DEPTH: usize = 32;
