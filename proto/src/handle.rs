//! Service handles.
//!
//! A handle is the 32-bit address of a service in a skynet cluster. The high
//! 8 bits are the harbor (node) id, the low 24 bits the id of the service
//! inside that node. Harbor 0 means "this node" / single-node mode, so a handle
//! whose high byte is 0 is always local.
//!
//! The text form is `:` followed by hexadecimal digits. [`Handle`]'s `Display`
//! always writes 8 lowercase digits (`:0100000a`), the form `skynet.address`
//! prints; parsing accepts 1 to 8 digits in either case.

use std::fmt;
use std::str::FromStr;

/// Mask of the local-id part of a handle.
pub const LOCAL_MASK: u32 = 0x00ff_ffff;
/// Number of bits the harbor id is shifted left by.
pub const HARBOR_SHIFT: u32 = 24;

/// Errors building or parsing a [`Handle`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The local id does not fit in 24 bits.
    #[error("local id {0:#x} does not fit in 24 bits")]
    LocalIdTooLarge(u32),
    /// The text does not start with `:`.
    #[error("handle text {0:?} does not start with ':'")]
    MissingColon(String),
    /// The text after `:` is not 1 to 8 hexadecimal digits.
    #[error("handle text {0:?} is not ':' followed by 1 to 8 hex digits")]
    BadHex(String),
}

/// A 32-bit service address: harbor id in the high byte, local id below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Handle(pub u32);

impl Handle {
    /// Builds a handle from its harbor id and 24-bit local id.
    pub const fn new(harbor: u8, local: u32) -> Result<Self, HandleError> {
        if local > LOCAL_MASK {
            return Err(HandleError::LocalIdTooLarge(local));
        }
        Ok(Handle(((harbor as u32) << HARBOR_SHIFT) | local))
    }

    /// The raw 32-bit value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The harbor (node) id: the high 8 bits.
    pub const fn harbor(self) -> u8 {
        (self.0 >> HARBOR_SHIFT) as u8
    }

    /// The id of the service inside its node: the low 24 bits.
    pub const fn local_id(self) -> u32 {
        self.0 & LOCAL_MASK
    }

    /// The same local id placed on another harbor. A harbor receiving a frame
    /// uses this to rebuild a destination from the 24 bits on the wire.
    pub const fn with_harbor(self, harbor: u8) -> Self {
        Handle(((harbor as u32) << HARBOR_SHIFT) | (self.0 & LOCAL_MASK))
    }

    /// Whether a message to this handle must leave the node whose harbor id
    /// is `own_harbor`: the high byte is neither 0 nor `own_harbor`.
    pub const fn is_remote(self, own_harbor: u8) -> bool {
        let h = self.harbor();
        h != 0 && h != own_harbor
    }
}

impl From<u32> for Handle {
    fn from(raw: u32) -> Self {
        Handle(raw)
    }
}

impl From<Handle> for u32 {
    fn from(h: Handle) -> Self {
        h.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ":{:08x}", self.0)
    }
}

impl FromStr for Handle {
    type Err = HandleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix(':')
            .ok_or_else(|| HandleError::MissingColon(s.to_owned()))?;
        let well_formed =
            (1..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(HandleError::BadHex(s.to_owned()));
        }
        u32::from_str_radix(digits, 16)
            .map(Handle)
            .map_err(|_| HandleError::BadHex(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let h = Handle::new(2, 7).unwrap();
        assert_eq!(h.raw(), 0x0200_0007);
        assert_eq!(h.harbor(), 2);
        assert_eq!(h.local_id(), 7);
        assert_eq!(Handle(0xff00_0001).harbor(), 255);
        assert_eq!(Handle(0xff00_0001).local_id(), 1);
        assert_eq!(
            Handle::new(1, 0x0100_0000),
            Err(HandleError::LocalIdTooLarge(0x0100_0000))
        );
        assert_eq!(Handle::new(1, LOCAL_MASK).unwrap().raw(), 0x01ff_ffff);
        assert_eq!(Handle(0x0100_0999).with_harbor(2), Handle(0x0200_0999));
    }

    #[test]
    fn remoteness() {
        assert!(!Handle(0x0000_0005).is_remote(1));
        assert!(!Handle(0x0100_0005).is_remote(1));
        assert!(Handle(0x0200_0005).is_remote(1));
        assert!(!Handle(0x0000_0005).is_remote(0));
        assert!(Handle(0x0200_0005).is_remote(0));
    }

    #[test]
    fn text() {
        assert_eq!(Handle(0x0100_000a).to_string(), ":0100000a");
        assert_eq!(Handle(5).to_string(), ":00000005");
        assert_eq!(":0100000a".parse::<Handle>(), Ok(Handle(0x0100_000a)));
        assert_eq!(":FF000001".parse::<Handle>(), Ok(Handle(0xff00_0001)));
        assert_eq!(":a".parse::<Handle>(), Ok(Handle(10)));
        assert!(matches!(
            "0100000a".parse::<Handle>(),
            Err(HandleError::MissingColon(_))
        ));
        for bad in [":", ":123456789", ":xyz", ":+1", ": 1"] {
            assert!(
                matches!(bad.parse::<Handle>(), Err(HandleError::BadHex(_))),
                "{bad}"
            );
        }
    }
}
