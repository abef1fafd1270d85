//! sproto's 0-pack: unpacking any bytes gives whole 8-byte groups or an
//! error; packing is undone by unpacking (up to the zero padding of the last
//! group), and the packed size stays within `packed_bound`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_proto::sproto::{self, pack::packed_bound};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if sproto::unpack(data, &mut out).is_ok() {
        assert_eq!(out.len() % 8, 0, "unpacked a partial group");
        // Packing the unpacked bytes and unpacking again is the identity.
        let mut p = Vec::new();
        sproto::pack(&out, &mut p);
        let mut u = Vec::new();
        sproto::unpack(&p, &mut u).expect("packed bytes unpack");
        assert_eq!(u, out);
    }
    let mut p = Vec::new();
    sproto::pack(data, &mut p);
    assert!(p.len() <= packed_bound(data.len()), "pack passed its bound");
    let mut u = Vec::new();
    sproto::unpack(&p, &mut u).expect("packed bytes unpack");
    assert_eq!(u.len(), data.len().div_ceil(8) * 8);
    assert_eq!(&u[..data.len()], data);
    assert!(u[data.len()..].iter().all(|&b| b == 0));
});
