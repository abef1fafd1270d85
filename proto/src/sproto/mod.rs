//! sproto: skynet's schema-driven message format, with no Lua attached.
//!
//! | module     | owns                                                                |
//! |------------|---------------------------------------------------------------------|
//! | [`schema`] | the schema model ([`Schema`], [`Type`], [`Field`], [`Protocol`]) and the loader of compiled schemas |
//! | [`text`]   | the `.sproto` language compiled to the binary schema ([`parse`])    |
//! | [`encode`] | struct encoding, reading values from an [`EncodeSource`]            |
//! | [`decode`] | struct decoding, handing values to a [`DecodeVisitor`]              |
//! | [`pack`]   | the 0-pack compression of RPC packets                               |
//!
//! A struct is `u16 n`, `n` little-endian u16 words, then the data part. A
//! word 0 means "the next data item" (`u32 length` + bytes); an even word
//! `w` is the inline integer `w/2 - 1`; an odd word skips `(w+1)/2` tags.
//! Limits: nesting depth [`MAX_DEPTH`], encoded size [`MAX_SIZE`].

pub mod decode;
pub mod encode;
pub mod pack;
pub mod schema;
pub mod text;

pub use decode::{decode, DecodeError, DecodeVisitor, Value};
pub use encode::{encode, EncodeError, EncodeSource, Part, MAX_DEPTH, MAX_SIZE};
pub use pack::{pack, unpack, UnpackError};
pub use schema::{Field, Kind, Protocol, Schema, SchemaError, Type};
pub use text::{parse, ParseError};
