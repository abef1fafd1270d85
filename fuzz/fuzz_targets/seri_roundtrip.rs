//! seri (`skynet.pack` format): decoding any bytes either fails with an error
//! or gives values that pack again (unless nested past the packer's limit)
//! and unpack to the same values; packing is then a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skynet_proto::seri::{pack, unpack, PackError, SeriReader};

fuzz_target!(|data: &[u8]| {
    // The token reader alone must end or fail, never loop or panic.
    let mut r = SeriReader::new(data);
    let mut steps = 0usize;
    while let Ok(Some(_)) = r.next_item() {
        steps += 1;
        assert!(steps <= data.len(), "reader made no progress");
    }
    let Ok(values) = unpack(data) else { return };
    let bytes = match pack(&values) {
        Ok(b) => b,
        // The decoder builds up to 512 levels, the packer writes 32.
        Err(PackError::TooDeep) => return,
        Err(e) => panic!("decoded values do not pack: {e}"),
    };
    let again = unpack(&bytes).expect("packed bytes unpack");
    assert_eq!(again, values, "round trip changed the values");
    assert_eq!(pack(&again).expect("packs"), bytes, "packing is not stable");
});
