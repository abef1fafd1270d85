//! sproto schemas: any bytes load as a compiled schema or fail with an
//! error; any text compiles (sprotoparser) or fails with an error, and what
//! compiles loads, with every field index and protocol type in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_proto::sproto::{self, Kind, Schema};

fn check(s: &Schema) {
    for t in &s.types {
        for f in &t.fields {
            assert!((f.id as usize) < s.nfields);
            if let Kind::Struct(i) = f.kind {
                assert!(i < s.types.len());
            }
            assert!(t.field_by_tag(u32::from(f.tag)).is_some());
        }
    }
    for p in &s.protocols {
        for ty in [p.request, p.response].into_iter().flatten() {
            assert!(ty < s.types.len());
        }
        assert!(s.protocol_by_tag(i64::from(p.tag)).is_some());
    }
    let _ = s.dump();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Schema::from_binary(data) {
        check(&s);
    }
    if let Ok(bin) = sproto::parse(data, "=fuzz") {
        let s = Schema::from_binary(&bin).expect("compiled schema loads");
        check(&s);
    }
});
