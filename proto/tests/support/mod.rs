//! Shared helpers for the golden-vector tests: locating and reading the TSV
//! files, hex, and a small Lua-literal model used to compare decoded values
//! with the expressions written in the vector files.
#![allow(dead_code)]

pub mod lua;

use std::path::PathBuf;

/// The golden vector directory: `$SKYNET_VECTORS`, or `shared/vectors` next
/// to the repository.
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("SKYNET_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors")),
    }
}

/// The data rows of a vector file (comment lines dropped), split on tabs.
pub fn read_tsv(name: &str) -> Vec<Vec<String>> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Decodes lowercase/uppercase hex without separators.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s}")))
        .collect()
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deterministic pseudo-random sequence (for chunking streams).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}
