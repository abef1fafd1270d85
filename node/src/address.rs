//! Service addresses written as text, as skynet's API takes them: `":0000000a"`
//! (a handle in hex), `".name"` (a local name) or `"name"` (a global name).
//! Every place that reads such a text (sends, kernel commands, the results of
//! `addresscommand`) parses it here.

/// A text address, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address<'a> {
    /// `:hex`, read as skynet reads it, with C's `strtoul(s, NULL, 16)`: leading
    /// blanks, an optional sign and `0x`, then the hex digits up to the first
    /// other character (0 when there are none), truncated to 32 bits.
    Handle(u32),
    /// `.name`: a local name, given without its dot.
    Local(&'a str),
    /// Anything else: a global name.
    Global(&'a str),
}

impl<'a> Address<'a> {
    pub fn parse(text: &'a str) -> Self {
        if let Some(hex) = text.strip_prefix(':') {
            Address::Handle(strtoul_hex(hex))
        } else if let Some(name) = text.strip_prefix('.') {
            Address::Local(name)
        } else {
            Address::Global(text)
        }
    }
}

/// C's `strtoul(s, NULL, 16)` on an LP64 target, cast to `uint32_t` as skynet
/// casts it: an overflow saturates to `ULONG_MAX` (so 0xffffffff), a minus sign
/// negates modulo 2^64.
fn strtoul_hex(s: &str) -> u32 {
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // "0x" is a prefix only when a hex digit follows; "0xg" reads as 0.
    let s = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_hexdigit()) => rest,
        _ => s,
    };
    let mut value: u64 = 0;
    let mut overflow = false;
    for digit in s.chars().map_while(|c| c.to_digit(16)) {
        match value
            .checked_mul(16)
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    let value = if overflow {
        u64::MAX
    } else if negative {
        value.wrapping_neg()
    } else {
        value
    };
    value as u32
}

#[cfg(test)]
mod tests {
    use super::Address::{self, Global, Handle, Local};

    #[test]
    fn the_three_kinds() {
        assert_eq!(Address::parse(":0000000a"), Handle(10));
        assert_eq!(Address::parse(":FF"), Handle(0xff));
        assert_eq!(Address::parse(".launcher"), Local("launcher"));
        assert_eq!(Address::parse("."), Local(""));
        assert_eq!(Address::parse("DATACENTER"), Global("DATACENTER"));
        assert_eq!(Address::parse(""), Global(""));
    }

    #[test]
    fn hex_is_read_as_strtoul_reads_it() {
        assert_eq!(Address::parse(": 1f "), Handle(0x1f), "blanks, then digits");
        assert_eq!(
            Address::parse(":12zz"),
            Handle(0x12),
            "stops at a non-digit"
        );
        assert_eq!(Address::parse(":0x1f"), Handle(0x1f));
        assert_eq!(Address::parse(":0xg"), Handle(0), "0x without a digit");
        assert_eq!(Address::parse(":+a"), Handle(10));
        assert_eq!(Address::parse(":-1"), Handle(0xffff_ffff));
        assert_eq!(Address::parse(":"), Handle(0));
        assert_eq!(Address::parse(":xyz"), Handle(0));
        // 36 bits fit an unsigned long: the cast keeps the low 32.
        assert_eq!(Address::parse(":123456789"), Handle(0x2345_6789));
        // More than 64 bits: ULONG_MAX.
        assert_eq!(Address::parse(":1234567890abcdef12"), Handle(0xffff_ffff));
    }
}
