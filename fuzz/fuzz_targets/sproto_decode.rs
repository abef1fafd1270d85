//! sproto struct decoding with a schema that has every kind of field: any
//! bytes, read as each of its types, and also after 0-unpacking, decode or
//! fail with an error; what decodes reports well-nested structs and arrays
//! whose elements match their announced counts, and uses no more bytes than
//! it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_proto::sproto::{self, DecodeError, DecodeVisitor, Field, Schema, Type, Value};
use std::sync::OnceLock;

/// Every built-in type, arrays of each, a decimal, nesting, a keyed map, a
/// two-field map, a tag gap and recursion.
const SCHEMA: &str = r#"
.Item {
    key 0 : string
    value 1 : integer
}
.Node {
    name 0 : string
    n 1 : integer
    ok 2 : boolean
    blob 3 : binary
    x 4 : double
    money 5 : integer(2)
    names 6 : *string
    ns 7 : *integer
    oks 8 : *boolean
    xs 9 : *double
    moneys 10 : *integer(3)
    children 12 : *Node
    byname 13 : *Node(name)
    items 14 : *Item()
    next 20 : Node
    far 1000 : integer
}
ping 1 {
    request Node
    response Item
}
"#;

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let bin = sproto::parse(SCHEMA.as_bytes(), "=fuzz").expect("schema parses");
        Schema::from_binary(&bin).expect("schema loads")
    })
}

/// Checks the order of the decoder's reports.
#[derive(Default)]
struct Check {
    /// Open arrays: announced length, elements seen.
    arrays: Vec<(usize, usize)>,
    structs: usize,
}

impl Check {
    fn element(&mut self, f: &Field, index: usize) {
        if f.array {
            let a = self
                .arrays
                .last_mut()
                .expect("array element outside an array");
            a.1 += 1;
            assert_eq!(index, a.1, "element index out of order");
            assert!(a.1 <= a.0, "more elements than announced");
        } else {
            assert_eq!(index, 0);
        }
    }
}

impl DecodeVisitor for Check {
    type Error = DecodeError;

    fn value(
        &mut self,
        _: &Type,
        f: &Field,
        index: usize,
        _: Value<'_>,
    ) -> Result<(), DecodeError> {
        self.element(f, index);
        Ok(())
    }
    fn begin_array(&mut self, _: &Type, f: &Field, len: usize) -> Result<(), DecodeError> {
        assert!(f.array);
        self.arrays.push((len, 0));
        Ok(())
    }
    fn end_array(&mut self, _: &Type, _: &Field) -> Result<(), DecodeError> {
        let (len, seen) = self.arrays.pop().expect("end of an array never begun");
        assert_eq!(len, seen, "fewer elements than announced");
        Ok(())
    }
    fn begin_struct(
        &mut self,
        _: &Type,
        f: &Field,
        index: usize,
        _: &Type,
        _: usize,
    ) -> Result<(), DecodeError> {
        self.element(f, index);
        self.structs += 1;
        Ok(())
    }
    fn end_struct(&mut self, _: &Type, _: &Field, _: usize, _: &Type) -> Result<(), DecodeError> {
        self.structs = self
            .structs
            .checked_sub(1)
            .expect("end of a struct never begun");
        Ok(())
    }
}

fn decode_all(s: &Schema, data: &[u8]) {
    for ty in 0..s.types.len() {
        let mut c = Check::default();
        if let Ok(used) = sproto::decode(s, ty, data, &mut c) {
            assert!(used <= data.len());
            assert!(c.arrays.is_empty() && c.structs == 0, "unbalanced reports");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let s = schema();
    decode_all(s, data);
    let mut unpacked = Vec::new();
    if sproto::unpack(data, &mut unpacked).is_ok() {
        decode_all(s, &unpacked);
    }
});
