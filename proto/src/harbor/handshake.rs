//! The one-byte harbor handshake.
//!
//! Right after the TCP connection is set up each side sends exactly one
//! byte, its own harbor id: the connecting side first, then the accepting
//! side. The connecting side knows from the master which id to expect.

use super::error::HandshakeError;

/// Length of a handshake message.
pub const HANDSHAKE_LEN: usize = 1;

/// The handshake message of harbor `own_id`.
pub fn handshake_byte(own_id: u8) -> Result<[u8; HANDSHAKE_LEN], HandshakeError> {
    if own_id == 0 {
        return Err(HandshakeError::ZeroId);
    }
    Ok([own_id])
}

/// Checks a received handshake byte. `expected` is the id the master
/// announced for the peer (the connecting side knows it; the accepting side
/// passes `None` and learns the id from the byte). Returns the peer's id.
pub fn check_handshake(received: u8, expected: Option<u8>) -> Result<u8, HandshakeError> {
    if received == 0 {
        return Err(HandshakeError::ZeroId);
    }
    match expected {
        Some(expected) if expected != received => {
            Err(HandshakeError::Mismatch { expected, received })
        }
        _ => Ok(received),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake() {
        assert_eq!(handshake_byte(1), Ok([1]));
        assert_eq!(handshake_byte(255), Ok([255]));
        assert_eq!(handshake_byte(0), Err(HandshakeError::ZeroId));
        assert_eq!(check_handshake(2, Some(2)), Ok(2));
        assert_eq!(check_handshake(2, None), Ok(2));
        assert_eq!(check_handshake(0, None), Err(HandshakeError::ZeroId));
        assert_eq!(
            check_handshake(3, Some(2)),
            Err(HandshakeError::Mismatch {
                expected: 2,
                received: 3
            })
        );
    }
}
