//! The read buffer of a Lua socket (`socketdriver.buffer()`): received blocks
//! queued in order, read from the front by size, up to a separator, or all at
//! once. Pure data structure; the Lua binding lives in `snlua::socketdriver`.

use std::collections::VecDeque;

#[derive(Default, Debug)]
pub struct SockBuf {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already consumed.
    offset: usize,
    /// Bytes not yet consumed.
    size: usize,
}

impl SockBuf {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting to be read.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Appends a received block; returns the new size.
    pub fn push(&mut self, block: Vec<u8>) -> usize {
        if !block.is_empty() {
            self.size += block.len();
            self.chunks.push_back(block);
        }
        self.size
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.offset = 0;
        self.size = 0;
    }

    /// The first `n` bytes (`n <= size`): borrowed from the first block when it
    /// holds them all, else gathered into `scratch`.
    pub fn peek<'a>(&'a self, n: usize, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        assert!(n <= self.size, "peek past the end of a socket buffer");
        if n == 0 {
            return &[];
        }
        let first = &self.chunks[0][self.offset..];
        if first.len() >= n {
            return &first[..n];
        }
        scratch.clear();
        scratch.reserve(n);
        let mut left = n;
        for (i, c) in self.chunks.iter().enumerate() {
            let c = if i == 0 { &c[self.offset..] } else { &c[..] };
            let take = c.len().min(left);
            scratch.extend_from_slice(&c[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        scratch.as_slice()
    }

    /// Discards the first `n` bytes (`n <= size`).
    pub fn consume(&mut self, mut n: usize) {
        assert!(n <= self.size, "consume past the end of a socket buffer");
        self.size -= n;
        while n > 0 {
            let avail = self.chunks[0].len() - self.offset;
            if n < avail {
                self.offset += n;
                return;
            }
            n -= avail;
            self.chunks.pop_front();
            self.offset = 0;
        }
    }

    /// Position (from the read point) of the first occurrence of `sep`. An empty
    /// separator matches at 0 when any byte is buffered.
    pub fn find(&self, sep: &[u8]) -> Option<usize> {
        if self.size == 0 || sep.len() > self.size {
            return None;
        }
        if sep.is_empty() {
            return Some(0);
        }
        let mut base = 0usize; // position of the start of chunk i
        for (i, c) in self.chunks.iter().enumerate() {
            let start = if i == 0 { self.offset } else { 0 };
            let data = &c[start..];
            let mut j = 0;
            while j < data.len() {
                match data[j..].iter().position(|b| *b == sep[0]) {
                    None => break,
                    Some(k) => {
                        let at = j + k;
                        if base + at + sep.len() > self.size {
                            return None;
                        }
                        if self.matches_at(i, start + at, sep) {
                            return Some(base + at);
                        }
                        j = at + 1;
                    }
                }
            }
            base += data.len();
        }
        None
    }

    /// True if `sep` is found starting at byte `from` of chunk `ci`.
    fn matches_at(&self, mut ci: usize, mut from: usize, mut sep: &[u8]) -> bool {
        loop {
            let c = &self.chunks[ci];
            let avail = c.len() - from;
            if avail >= sep.len() {
                return &c[from..from + sep.len()] == sep;
            }
            if c[from..] != sep[..avail] {
                return false;
            }
            sep = &sep[avail..];
            ci += 1;
            from = 0;
            if ci >= self.chunks.len() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // skynet's socketbuffer reads, built on what the driver uses (peek,
    // consume, find): they show that those work across blocks.

    /// The first `n` bytes, removed; None if fewer are buffered or n is 0.
    fn pop(b: &mut SockBuf, n: usize) -> Option<Vec<u8>> {
        if n == 0 || n > b.size() {
            return None;
        }
        let mut scratch = Vec::new();
        let v = b.peek(n, &mut scratch).to_vec();
        b.consume(n);
        Some(v)
    }

    /// The text before the next `sep`, removed with the separator.
    fn readline(b: &mut SockBuf, sep: &[u8]) -> Option<Vec<u8>> {
        let at = b.find(sep)?;
        let mut scratch = Vec::new();
        let v = b.peek(at, &mut scratch).to_vec();
        b.consume(at + sep.len());
        Some(v)
    }

    /// Everything, removed.
    fn readall(b: &mut SockBuf) -> Vec<u8> {
        let mut scratch = Vec::new();
        let v = b.peek(b.size(), &mut scratch).to_vec();
        b.clear();
        v
    }

    fn buf(parts: &[&str]) -> SockBuf {
        let mut b = SockBuf::new();
        for p in parts {
            b.push(p.as_bytes().to_vec());
        }
        b
    }

    #[test]
    fn pop_across_blocks() {
        let mut b = buf(&["hello ", "wor", "ld"]);
        assert_eq!(b.size(), 11);
        assert_eq!(pop(&mut b, 0), None);
        assert_eq!(pop(&mut b, 12), None);
        assert_eq!(pop(&mut b, 3).unwrap(), b"hel");
        assert_eq!(pop(&mut b, 5).unwrap(), b"lo wo");
        assert_eq!(b.size(), 3);
        assert_eq!(readall(&mut b), b"rld");
        assert_eq!(b.size(), 0);
        assert_eq!(readall(&mut b), b"");
    }

    #[test]
    fn readline_with_separators_split_over_blocks() {
        let mut b = buf(&["line1\r", "\nline2", "\r\n", "tail"]);
        assert_eq!(b.find(b"\r\n"), Some(5));
        assert_eq!(readline(&mut b, b"\r\n").unwrap(), b"line1");
        assert_eq!(readline(&mut b, b"\r\n").unwrap(), b"line2");
        assert_eq!(readline(&mut b, b"\r\n"), None);
        assert_eq!(readline(&mut b, b"\n"), None);
        assert_eq!(readall(&mut b), b"tail");
        let mut b = buf(&["a\n\nb\n"]);
        assert_eq!(readline(&mut b, b"\n").unwrap(), b"a");
        assert_eq!(readline(&mut b, b"\n").unwrap(), b"");
        assert_eq!(readline(&mut b, b"\n").unwrap(), b"b");
        assert_eq!(readline(&mut b, b"\n"), None);
    }

    #[test]
    fn separator_prefix_at_the_end_does_not_match() {
        let b = buf(&["abc\r"]);
        assert_eq!(b.find(b"\r\n"), None);
        let b = buf(&["ab", "cd", "ef"]);
        assert_eq!(b.find(b"bcde"), Some(1));
        assert_eq!(b.find(b"f"), Some(5));
        assert_eq!(b.find(b"fg"), None);
        assert_eq!(b.find(b""), Some(0));
        assert_eq!(SockBuf::new().find(b""), None);
    }

    #[test]
    fn peek_borrows_or_gathers() {
        let b = buf(&["abc", "def"]);
        let mut s = Vec::new();
        assert_eq!(b.peek(2, &mut s), b"ab");
        assert!(s.is_empty());
        assert_eq!(b.peek(5, &mut s), b"abcde");
    }

    #[test]
    fn many_small_blocks() {
        let mut b = SockBuf::new();
        for i in 0..20 {
            b.push(format!("chunk{i:03}_").into_bytes());
        }
        assert_eq!(b.size(), 180);
        let all = pop(&mut b, 180).unwrap();
        assert!(all.starts_with(b"chunk000_chunk001_"));
        assert_eq!(b.size(), 0);
    }
}
