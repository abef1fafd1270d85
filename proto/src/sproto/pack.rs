//! sproto's 0-pack: a compression of runs of zero bytes, applied to RPC
//! packets.
//!
//! The input is read in 8-byte groups (the last one padded with zeros).
//! A group becomes a bitmap byte (bit i set: byte i is not zero) followed by
//! its non-zero bytes. Groups that are (nearly) all non-zero go in a raw run
//! instead: `ff n` and then `(n+1)*8` bytes as they are. A full group starts a
//! run; a group with 6 or 7 non-zero bytes joins an open one; a run holds at
//! most 256 groups.

use super::encode::MAX_SIZE;
use std::fmt;

/// Why packed bytes could not be unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackError {
    /// A group or run is cut short.
    Truncated,
    /// The unpacked bytes would pass [`MAX_SIZE`].
    TooLarge,
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpackError::Truncated => f.write_str("Invalid unpack stream"),
            UnpackError::TooLarge => write!(f, "object is too large (>{MAX_SIZE})"),
        }
    }
}

impl std::error::Error for UnpackError {}

/// The most bytes packing `n` bytes can give.
pub fn packed_bound(n: usize) -> usize {
    n.div_ceil(2048) * 2 + n + 2
}

/// Appends the packed form of `src` to `out`.
pub fn pack(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(packed_bound(src.len()));
    // Where the open run's `ff n` is, and how many groups it has.
    let mut run_at = 0usize;
    let mut run_len = 0usize;
    for chunk in src.chunks(8) {
        let mut g = [0u8; 8];
        g[..chunk.len()].copy_from_slice(chunk);
        let nonzero = g.iter().filter(|&&b| b != 0).count();
        if nonzero == 8 || (run_len > 0 && nonzero >= 6) {
            if run_len == 0 {
                run_at = out.len();
                out.extend_from_slice(&[0xff, 0]);
            }
            out.extend_from_slice(&g);
            run_len += 1;
            if run_len == 256 {
                out[run_at + 1] = 255;
                run_len = 0;
            }
            continue;
        }
        if run_len > 0 {
            out[run_at + 1] = (run_len - 1) as u8;
            run_len = 0;
        }
        let mut map = 0u8;
        let at = out.len();
        out.push(0);
        for (i, &b) in g.iter().enumerate() {
            if b != 0 {
                map |= 1 << i;
                out.push(b);
            }
        }
        out[at] = map;
    }
    if run_len > 0 {
        out[run_at + 1] = (run_len - 1) as u8;
    }
}

/// Appends the unpacked form of `src` to `out` (a multiple of 8 bytes).
pub fn unpack(src: &[u8], out: &mut Vec<u8>) -> Result<(), UnpackError> {
    let limit = out.len() + MAX_SIZE;
    let mut i = 0;
    while i < src.len() {
        let head = src[i];
        i += 1;
        if head == 0xff {
            let Some(&n) = src.get(i) else {
                return Err(UnpackError::Truncated);
            };
            i += 1;
            let n = (usize::from(n) + 1) * 8;
            if src.len() - i < n {
                return Err(UnpackError::Truncated);
            }
            out.extend_from_slice(&src[i..i + n]);
            i += n;
        } else {
            let mut g = [0u8; 8];
            for (bit, b) in g.iter_mut().enumerate() {
                if head & (1 << bit) != 0 {
                    let Some(&v) = src.get(i) else {
                        return Err(UnpackError::Truncated);
                    };
                    *b = v;
                    i += 1;
                }
            }
            out.extend_from_slice(&g);
        }
        if out.len() > limit {
            return Err(UnpackError::TooLarge);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_refuses_cut_input() {
        let mut out = Vec::new();
        assert_eq!(unpack(&[0xff], &mut out), Err(UnpackError::Truncated));
        assert_eq!(
            unpack(&[0xff, 0, 1, 2], &mut out),
            Err(UnpackError::Truncated)
        );
        assert_eq!(unpack(&[0x03, 1], &mut out), Err(UnpackError::Truncated));
    }

    #[test]
    fn unpack_stops_at_the_size_limit() {
        // Each zero byte unpacks to 8 zero bytes.
        let src = vec![0u8; MAX_SIZE / 8 + 1];
        assert_eq!(unpack(&src, &mut Vec::new()), Err(UnpackError::TooLarge));
        let src = vec![0u8; MAX_SIZE / 8];
        let mut out = Vec::new();
        unpack(&src, &mut out).unwrap();
        assert_eq!(out.len(), MAX_SIZE);
    }

    #[test]
    fn round_trip_pads_to_groups() {
        for n in 0..100usize {
            let src: Vec<u8> = (0..n)
                .map(|i| if i % 3 == 0 { 0 } else { i as u8 })
                .collect();
            let mut p = Vec::new();
            pack(&src, &mut p);
            assert!(p.len() <= packed_bound(n));
            let mut u = Vec::new();
            unpack(&p, &mut u).unwrap();
            assert_eq!(u.len(), n.div_ceil(8) * 8);
            assert_eq!(&u[..n], &src[..]);
            assert!(u[n..].iter().all(|&b| b == 0));
        }
    }
}
