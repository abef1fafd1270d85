//! [`GlobalName`]: a cluster-wide service name.
//!
//! Global names are resolved by the master and carried in master packets and
//! harbor `N` notices. The rules are skynet's:
//!
//! * 1 to 15 bytes (the harbor keeps names in 16 zero-padded bytes);
//! * not starting with `:` (that is a handle literal) nor `.` (a local name);
//! * not something Lua's `tonumber` accepts (`"12"`, `"0x1f"`, `" 1e3 "`).
//!
//! One rule is added: no NUL byte, since the harbor's zero-padded storage
//! would silently cut the name there.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest global name, in bytes.
pub const MAX_LEN: usize = 15;

/// Why a byte string is not a valid global name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("global name is empty")]
    Empty,
    /// The name is longer than 15 bytes.
    #[error("global name is {0} bytes long, the limit is 15")]
    TooLong(usize),
    /// The name starts with `:`, the prefix of handle literals.
    #[error("global name {0:?} starts with ':'")]
    HandlePrefix(String),
    /// The name starts with `.`, the prefix of node-local names.
    #[error("{0:?} is a local name, not a global one")]
    LocalName(String),
    /// The name reads as a number.
    #[error("global name {0:?} is a number")]
    Numeric(String),
    /// The name contains a NUL byte.
    #[error("global name {0:?} contains a NUL byte")]
    ContainsNul(String),
}

/// A validated global name (1 to 15 bytes). Cheap to copy.
#[derive(Clone, Copy)]
pub struct GlobalName {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl GlobalName {
    /// Validates `name` against the rules in the module docs.
    pub fn new(name: impl AsRef<[u8]>) -> Result<Self, NameError> {
        let name = name.as_ref();
        Self::check(name)?;
        let mut bytes = [0u8; MAX_LEN];
        bytes[..name.len()].copy_from_slice(name);
        Ok(GlobalName {
            // `check` bounded the length by MAX_LEN.
            len: name.len() as u8,
            bytes,
        })
    }

    /// Checks `name` without building anything.
    pub fn check(name: &[u8]) -> Result<(), NameError> {
        let shown = || name.escape_ascii().to_string();
        match name.first() {
            None => return Err(NameError::Empty),
            Some(b':') => return Err(NameError::HandlePrefix(shown())),
            Some(b'.') => return Err(NameError::LocalName(shown())),
            Some(_) => {}
        }
        if name.len() > MAX_LEN {
            return Err(NameError::TooLong(name.len()));
        }
        if name.contains(&0) {
            return Err(NameError::ContainsNul(shown()));
        }
        if looks_like_lua_number(name) {
            return Err(NameError::Numeric(shown()));
        }
        Ok(())
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for GlobalName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for GlobalName {}

impl Hash for GlobalName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for GlobalName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GlobalName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Display for GlobalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_bytes().escape_ascii())
    }
}

impl fmt::Debug for GlobalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GlobalName(\"{}\")", self.as_bytes().escape_ascii())
    }
}

impl TryFrom<&str> for GlobalName {
    type Error = NameError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        GlobalName::new(s)
    }
}

impl std::str::FromStr for GlobalName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GlobalName::new(s)
    }
}

/// Whether Lua's `tonumber` would turn `s` into a number: optional
/// surrounding whitespace, an optional sign, then a decimal numeral (digits
/// with an optional point and exponent) or a hexadecimal one (`0x`, hex digits
/// with an optional point and binary exponent). `inf` and `nan` are not
/// numbers to Lua.
pub fn looks_like_lua_number(s: &[u8]) -> bool {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = s.iter().position(|b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut rest = &s[start..end];
    if let Some((b'+' | b'-', tail)) = rest.split_first() {
        rest = tail;
    }
    let (hex, body) = match rest {
        [b'0', b'x' | b'X', tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let is_digit = |b: u8| {
        if hex {
            b.is_ascii_hexdigit()
        } else {
            b.is_ascii_digit()
        }
    };
    let mut i = 0;
    let mut mantissa_digits = 0;
    while i < body.len() && is_digit(body[i]) {
        i += 1;
        mantissa_digits += 1;
    }
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && is_digit(body[i]) {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return false;
    }
    let exponent_mark: &[u8] = if hex { b"pP" } else { b"eE" };
    if i < body.len() && exponent_mark.contains(&body[i]) {
        i += 1;
        if i < body.len() && matches!(body[i], b'+' | b'-') {
            i += 1;
        }
        let digits_from = i;
        while i < body.len() && body[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_from {
            return false;
        }
    }
    i == body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for ok in [
            "A",
            "LOG",
            "SERVICE",
            "ABCDEFGHIJKLMNO",
            "x.y",
            "inf",
            "nan",
            "1a",
            "e5",
            "0x",
            "-",
            "1e",
        ] {
            let n = GlobalName::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(n.as_bytes(), ok.as_bytes());
            assert_eq!(n.to_string(), ok);
        }
    }

    #[test]
    fn invalid_names() {
        assert_eq!(GlobalName::new(""), Err(NameError::Empty));
        assert_eq!(
            GlobalName::new("ABCDEFGHIJKLMNOP"),
            Err(NameError::TooLong(16))
        );
        assert!(matches!(
            GlobalName::new(":1"),
            Err(NameError::HandlePrefix(_))
        ));
        assert!(matches!(
            GlobalName::new(".launcher"),
            Err(NameError::LocalName(_))
        ));
        assert!(matches!(
            GlobalName::new("a\0b"),
            Err(NameError::ContainsNul(_))
        ));
        for num in [
            "0", "12", "-3", "+4", " 5 ", "1.5", "-.5", "5.", "1e10", "1E-3", "0x1f", "0X1F",
            "0x.8p1", "0x1P+4", "\t7\n",
        ] {
            assert!(
                matches!(GlobalName::new(num), Err(NameError::Numeric(_))),
                "{num:?} should be numeric"
            );
        }
    }

    #[test]
    fn equality_ignores_padding() {
        let a = GlobalName::new("AB").unwrap();
        let b = GlobalName::new(b"AB").unwrap();
        assert_eq!(a, b);
        assert!(GlobalName::new("AB").unwrap() < GlobalName::new("ABC").unwrap());
        assert!(GlobalName::new("B").unwrap() > GlobalName::new("ABC").unwrap());
    }
}
