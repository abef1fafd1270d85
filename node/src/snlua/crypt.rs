//! `skynet.crypt` (also `client.crypt`): the hashes, ciphers and key
//! exchange of skynet's lua-crypt.c and lsha1.c, with the same Lua API,
//! outputs and error texts.
//!
//! The algorithms are plain functions over bytes (unit-tested here); the Lua
//! functions only check arguments, run one of them into a scratch buffer and
//! push the result. skynet's own constructions are kept bit for bit:
//! `hashkey` (djb and JS hashes side by side), `hmac64` (one MD5 block
//! without padding or feed-forward), `hmac64_md5`, the DH exchange modulo the
//! largest 64-bit prime with generator 5, and the lenient base64 decoder
//! (unknown bytes skipped, missing `=` tolerated). SHA-1, HMAC and MD5 come
//! from RustCrypto, base64 from its crate; DES is our own table-driven one
//! (`des_block`), checked against RustCrypto's in the tests.
//!
//! Where skynet misreads input (hex digit `g`, pkcs7 padding bytes over 8
//! read before the buffer) ours rejects it with skynet's error text.

mod des_block;

use super::lua::*;
use base64::Engine as _;
use des_block::Schedule;
use hmac::Mac as _;
use sha1::Digest as _;
use std::ffi::{c_int, CStr};

/// A result this long or shorter is built on the Rust stack; longer ones in
/// a Lua userdata, so a failed allocation raises without leaking.
const SMALL: usize = 256;

// ---------------------------------------------------------------------------
// The algorithms.

/// skynet's `hashkey`: the djb hash then the JS hash of `text`, each as 4
/// little-endian bytes.
pub fn hashkey(text: &[u8]) -> [u8; 8] {
    let mut djb: u32 = 5381;
    let mut js: u32 = 1_315_423_911;
    for &c in text {
        djb = djb.wrapping_mul(33).wrapping_add(c as u32);
        js ^= (js << 5).wrapping_add(c as u32).wrapping_add(js >> 2);
    }
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&djb.to_le_bytes());
    key[4..].copy_from_slice(&js.to_le_bytes());
    key
}

/// Eight random bytes, never all zero (skynet's `randomkey`; a zero key
/// would be refused by `dhexchange`).
pub fn randomkey() -> [u8; 8] {
    let mut key = [0u8; 8];
    if getrandom::getrandom(&mut key).is_err() {
        // No OS randomness: a clock- and process-derived key still varies.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        key = (t ^ (std::process::id() as u64).rotate_left(40)).to_le_bytes();
    }
    not_all_zero(key)
}

/// skynet's guard: a key whose bytes XOR to zero (an all-zero key among
/// them) gets the low bit of its first byte set.
fn not_all_zero(mut key: [u8; 8]) -> [u8; 8] {
    if key.iter().fold(0, |a, b| a ^ b) == 0 {
        key[0] |= 1;
    }
    key
}

const MD5_IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The MD5 sine table (RFC 1321).
const MD5_K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The left rotations of each MD5 round, four per round.
const MD5_S: [[u32; 4]; 4] = [
    [7, 12, 17, 22],
    [5, 9, 14, 20],
    [4, 11, 16, 23],
    [6, 10, 15, 21],
];

/// The 64 MD5 steps over one block of 16 words from the standard initial
/// state, returning the working registers without adding the initial state
/// back (skynet's hmac64 wants them so; MD5 proper adds it).
fn md5_steps(w: &[u32; 16]) -> [u32; 4] {
    let [mut a, mut b, mut c, mut d] = MD5_IV;
    for i in 0..64 {
        let round = i / 16;
        let (f, g) = match round {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let sum = a.wrapping_add(f).wrapping_add(MD5_K[i]).wrapping_add(w[g]);
        let next_b = b.wrapping_add(sum.rotate_left(MD5_S[round][i % 4]));
        (a, b, c, d) = (d, next_b, b, c);
    }
    [a, b, c, d]
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn qword(lo: u32, hi: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&lo.to_le_bytes());
    out[4..].copy_from_slice(&hi.to_le_bytes());
    out
}

/// skynet's `hmac64(x, y)`: one MD5 block of the words x1 x0 y1 y0 four
/// times over, folded to (c^d, a^b).
pub fn hmac64(x: &[u8; 8], y: &[u8; 8]) -> [u8; 8] {
    let quad = [le32(&x[4..]), le32(&x[..4]), le32(&y[4..]), le32(&y[..4])];
    let mut w = [0u32; 16];
    for (i, v) in w.iter_mut().enumerate() {
        *v = quad[i % 4];
    }
    let r = md5_steps(&w);
    qword(r[2] ^ r[3], r[0] ^ r[1])
}

/// skynet's `hmac64_md5(x, y)`: the MD5 of `(x..y):rep(3)`, its two halves
/// XORed.
pub fn hmac64_md5(x: &[u8; 8], y: &[u8; 8]) -> [u8; 8] {
    let mut h = md5::Md5::new();
    for _ in 0..3 {
        h.update(x);
        h.update(y);
    }
    let m = h.finalize();
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = m[i] ^ m[i + 8];
    }
    out
}

/// skynet's `hmac_hash(key, text)`: hmac64 of `hashkey(text)` and `key`.
pub fn hmac_hash(key: &[u8; 8], text: &[u8]) -> [u8; 8] {
    hmac64(&hashkey(text), key)
}

/// The DH modulus: the largest prime below 2^64.
pub const DH_P: u64 = 0xffff_ffff_ffff_ffc5;
const DH_G: u64 = 5;

fn mul_mod_p(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) % DH_P as u128) as u64
}

fn pow_mod_p(mut base: u64, mut exp: u64) -> u64 {
    let mut acc = 1u64;
    base %= DH_P;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod_p(acc, base);
        }
        base = mul_mod_p(base, base);
        exp >>= 1;
    }
    acc
}

/// `x^y mod P` as skynet computes it (`x`, `y` non-zero): a base of exactly
/// P with exponent 1 comes back as P, not 0, and callers may rely on that
/// value, so it is kept.
pub fn dh_secret(x: u64, y: u64) -> u64 {
    if y == 1 {
        if x > DH_P {
            x - DH_P
        } else {
            x
        }
    } else {
        pow_mod_p(x, y)
    }
}

/// `5^x mod P` (`x` non-zero).
pub fn dh_exchange(x: u64) -> u64 {
    dh_secret(DH_G, x)
}

/// The padding modes, by `crypt.padding` index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Padding {
    /// 0x80 then zeros.
    Iso7816_4 = 0,
    /// n bytes of value n.
    Pkcs7 = 1,
}

impl Padding {
    pub fn from_index(i: i64) -> Option<Padding> {
        match i {
            0 => Some(Padding::Iso7816_4),
            1 => Some(Padding::Pkcs7),
            _ => None,
        }
    }

    /// Fills `block[used..]`; `used` is below 8.
    fn fill(self, block: &mut [u8; 8], used: usize) {
        match self {
            Padding::Iso7816_4 => {
                block[used] = 0x80;
                block[used + 1..].fill(0);
            }
            Padding::Pkcs7 => block[used..].fill((8 - used) as u8),
        }
    }

    /// How many bytes of padding end `last_block`, if they are well formed.
    fn measure(self, last_block: &[u8; 8]) -> Option<usize> {
        match self {
            Padding::Iso7816_4 => {
                let zeros = last_block.iter().rev().take_while(|&&b| b == 0).count();
                (zeros < 8 && last_block[7 - zeros] == 0x80).then_some(zeros + 1)
            }
            Padding::Pkcs7 => {
                let n = last_block[7] as usize;
                ((1..=8).contains(&n) && last_block[8 - n..].iter().all(|&b| b as usize == n))
                    .then_some(n)
            }
        }
    }
}

/// The length `des_encode` writes for `len` bytes of text: always at least
/// one byte of padding.
pub fn des_encoded_len(len: usize) -> usize {
    (len + 8) & !7
}

/// DES-ECB of `text` with padding into `out` (`des_encoded_len` bytes).
pub fn des_encode(key: &[u8; 8], text: &[u8], padding: Padding, out: &mut [u8]) {
    let cipher = Schedule::new(key);
    let whole = text.len() & !7;
    out[..whole].copy_from_slice(&text[..whole]);
    let mut tail = [0u8; 8];
    tail[..text.len() - whole].copy_from_slice(&text[whole..]);
    padding.fill(&mut tail, text.len() - whole);
    out[whole..whole + 8].copy_from_slice(&tail);
    for block in out[..whole + 8].chunks_exact_mut(8) {
        cipher.apply(block);
    }
}

/// Why `des_decode` refused its input.
#[derive(Debug, PartialEq, Eq)]
pub enum DesError {
    /// Not a positive multiple of 8 bytes.
    Length(usize),
    /// The padding does not check.
    Padding,
}

/// Decrypts `text` into `out` (as long as `text`), returning the length
/// without the padding.
pub fn des_decode(
    key: &[u8; 8],
    text: &[u8],
    padding: Padding,
    out: &mut [u8],
) -> Result<usize, DesError> {
    if text.is_empty() || !text.len().is_multiple_of(8) {
        return Err(DesError::Length(text.len()));
    }
    let cipher = Schedule::new(key).reversed();
    let out = &mut out[..text.len()];
    out.copy_from_slice(text);
    for block in out.chunks_exact_mut(8) {
        cipher.apply(block);
    }
    let mut last = [0u8; 8];
    last.copy_from_slice(&out[out.len() - 8..]);
    let pad = padding.measure(&last).ok_or(DesError::Padding)?;
    Ok(out.len() - pad)
}

/// Lower-case hex of `bytes` into `out` (twice as long).
pub fn hex_encode(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[(b >> 4) as usize];
        pair[1] = DIGITS[(b & 15) as usize];
    }
}

/// Decodes lower-case hex (skynet takes no upper case) into `out`; `None`
/// on a byte that is no such digit. The length is checked by the caller.
pub fn hex_decode(text: &[u8], out: &mut [u8]) -> Option<usize> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(text.len() / 2)
}

pub fn base64_encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

pub fn base64_encode(bytes: &[u8], out: &mut [u8]) -> usize {
    base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, out)
        .unwrap_or(0)
}

/// Room enough for what `base64_decode` writes from `len` bytes.
pub fn base64_decoded_cap(len: usize) -> usize {
    len.div_ceil(4) * 3
}

/// skynet's lenient base64 decoding into `out`: bytes outside the alphabet
/// and `=` are skipped, the text may end without its `=`, and `=` may close
/// a group in the middle. `None` when a group holds fewer than two digits,
/// `=` comes before a digit in a group, or the bits cut off are not zero.
pub fn base64_decode(text: &[u8], out: &mut [u8]) -> Option<usize> {
    /// A digit's value, `PAD` for `=`, `SKIP` for any other byte.
    const PAD: i8 = -2;
    const SKIP: i8 = -1;
    fn class(c: u8) -> i8 {
        match c {
            b'A'..=b'Z' => (c - b'A') as i8,
            b'a'..=b'z' => (c - b'a' + 26) as i8,
            b'0'..=b'9' => (c - b'0' + 52) as i8,
            b'+' => 62,
            b'/' => 63,
            b'=' => PAD,
            _ => SKIP,
        }
    }
    let mut n = 0;
    let mut i = 0;
    while i < text.len() {
        // Gather a group of four; past the end of the text, `=` is implied.
        let mut group = [0i8; 4];
        let mut pads = 0;
        let mut j = 0;
        while j < 4 {
            let c = match text.get(i) {
                Some(&b) => class(b),
                None => PAD,
            };
            i += 1;
            if c == SKIP {
                continue;
            }
            if c == PAD {
                pads += 1;
            }
            group[j] = c;
            j += 1;
        }
        let v = |k: usize| group[k] as u32;
        match pads {
            0 => {
                let bits = v(0) << 18 | v(1) << 12 | v(2) << 6 | v(3);
                out[n..n + 3].copy_from_slice(&bits.to_be_bytes()[1..]);
                n += 3;
            }
            1 if group[3] == PAD && group[2] & 3 == 0 => {
                let bits = v(0) << 10 | v(1) << 4 | v(2) >> 2;
                out[n..n + 2].copy_from_slice(&(bits as u16).to_be_bytes());
                n += 2;
            }
            2 if group[3] == PAD && group[2] == PAD && group[1] & 15 == 0 => {
                out[n] = (v(0) << 2 | v(1) >> 4) as u8;
                n += 1;
            }
            _ => return None,
        }
    }
    Some(n)
}

pub fn sha1(text: &[u8]) -> [u8; 20] {
    sha1::Sha1::digest(text).into()
}

pub fn hmac_sha1(key: &[u8], text: &[u8]) -> [u8; 20] {
    // Any key length is accepted (longer than a block: hashed first).
    let mut mac = <hmac::Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(text);
    mac.finalize().into_bytes().into()
}

/// Each byte of `a` XORed with the byte of `b` at the same index modulo
/// `b`'s length (`b` not empty), into `out`.
pub fn xor_str(a: &[u8], b: &[u8], out: &mut [u8]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b.iter().cycle()) {
        *o = x ^ y;
    }
}

// ---------------------------------------------------------------------------
// The Lua functions.

/// Runs `fill` on a scratch buffer of `cap` bytes and pushes as a string the
/// first bytes of it, as many as `fill` says; an `Err` from `fill` is raised
/// as a Lua error with the caller's position.
///
/// # Safety
/// `l` is a live state with a free stack slot; no value with a destructor
/// is alive in the caller (this may raise).
unsafe fn push_filled(
    l: State,
    cap: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<usize, String>,
) -> c_int {
    let mut small = [0u8; SMALL];
    let buf: &mut [u8] = if cap <= SMALL {
        &mut small[..cap]
    } else {
        // SAFETY: the userdata has `cap` bytes and stays on the stack (so
        // alive) until this function returns.
        unsafe { std::slice::from_raw_parts_mut(lua_newuserdatauv(l, cap, 0) as *mut u8, cap) }
    };
    let result = fill(buf);
    match result {
        // SAFETY: `buf[..n]` was written by `fill`; pushing may raise, and
        // nothing here has a destructor.
        Ok(n) => unsafe { push_bytes(l, &buf[..n.min(cap)]) },
        // SAFETY: raise_here drops the message before raising.
        Err(msg) => unsafe { raise_here(l, msg) },
    }
    1
}

/// The 8 bytes of the string argument `idx`, else a Lua error `what`.
///
/// # Safety
/// `l` is a live state; may raise.
unsafe fn arg8(l: State, idx: c_int, what: &str) -> [u8; 8] {
    // SAFETY: a live state; check_bytes raises on a non-string.
    let b = unsafe { check_bytes(l, idx) };
    match <[u8; 8]>::try_from(b) {
        Ok(k) => k,
        // SAFETY: nothing with a destructor is alive but the message, which
        // raise_here drops first.
        Err(_) => unsafe { raise_here(l, what.to_string()) },
    }
}

/// The padding mode argument 3 (default iso7816_4).
///
/// # Safety
/// `l` is a live state; may raise.
unsafe fn arg_padding(l: State) -> Padding {
    // SAFETY: a live state; luaL_optinteger raises on a non-integer.
    let i = unsafe { luaL_optinteger(l, 3, 0) };
    match Padding::from_index(i) {
        Some(p) => p,
        // SAFETY: as in arg8.
        None => unsafe { raise_here(l, format!("Invalid padding mode {i}")) },
    }
}

/// The DES key argument 1.
///
/// # Safety
/// `l` is a live state; may raise.
unsafe fn arg_des_key(l: State) -> [u8; 8] {
    // SAFETY: a live state.
    let b = unsafe { check_bytes(l, 1) };
    match <[u8; 8]>::try_from(b) {
        Ok(k) => k,
        // SAFETY: as in arg8.
        Err(_) => unsafe { raise_here(l, format!("Invalid key size {}, need 8 bytes", b.len())) },
    }
}

/// Reads two 8-byte arguments as skynet's read64 does.
///
/// # Safety
/// `l` is a live state; may raise.
unsafe fn arg_xy(l: State) -> ([u8; 8], [u8; 8]) {
    // SAFETY: a live state.
    unsafe {
        (
            arg8(l, 1, "Invalid uint64 x"),
            arg8(l, 2, "Invalid uint64 y"),
        )
    }
}

/// # Safety
/// `l` is a live state; may raise.
unsafe fn push8(l: State, v: &[u8]) -> c_int {
    // SAFETY: a live state; no destructor is alive.
    unsafe { push_bytes(l, v) };
    1
}

unsafe extern "C-unwind" fn lhashkey(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing here has a destructor.
    unsafe {
        let k = hashkey(check_bytes(l, 1));
        push8(l, &k)
    }
}

unsafe extern "C-unwind" fn lrandomkey(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe { push8(l, &randomkey()) }
}

unsafe extern "C-unwind" fn ldesencode(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; the key and text borrow Lua
    // strings held by the stack; nothing has a destructor.
    unsafe {
        let key = arg_des_key(l);
        let text = check_bytes(l, 2);
        let padding = arg_padding(l);
        push_filled(l, des_encoded_len(text.len()), |out| {
            des_encode(&key, text, padding, out);
            Ok(out.len())
        })
    }
}

unsafe extern "C-unwind" fn ldesdecode(l: State) -> c_int {
    // SAFETY: as ldesencode.
    unsafe {
        let key = arg_des_key(l);
        let text = check_bytes(l, 2);
        if text.is_empty() || !text.len().is_multiple_of(8) {
            raise_here(l, format!("Invalid des crypt text length {}", text.len()));
        }
        let padding = arg_padding(l);
        push_filled(l, text.len(), |out| {
            des_decode(&key, text, padding, out).map_err(|e| match e {
                DesError::Length(n) => format!("Invalid des crypt text length {n}"),
                DesError::Padding => "Invalid des crypt text".to_string(),
            })
        })
    }
}

unsafe extern "C-unwind" fn lhexencode(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing has a destructor.
    unsafe {
        let text = check_bytes(l, 1);
        push_filled(l, text.len() * 2, |out| {
            hex_encode(text, out);
            Ok(out.len())
        })
    }
}

unsafe extern "C-unwind" fn lhexdecode(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing has a destructor.
    unsafe {
        let text = check_bytes(l, 1);
        if !text.len().is_multiple_of(2) {
            raise_here(l, format!("Invalid hex text size {}", text.len()));
        }
        push_filled(l, text.len() / 2, |out| {
            hex_decode(text, out).ok_or_else(|| "Invalid hex text".to_string())
        })
    }
}

unsafe extern "C-unwind" fn lhmac64(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let (x, y) = arg_xy(l);
        push8(l, &hmac64(&x, &y))
    }
}

unsafe extern "C-unwind" fn lhmac64_md5(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let (x, y) = arg_xy(l);
        push8(l, &hmac64_md5(&x, &y))
    }
}

unsafe extern "C-unwind" fn lhmac_hash(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let key = arg8(l, 1, "Invalid uint64 key");
        let h = hmac_hash(&key, check_bytes(l, 2));
        push8(l, &h)
    }
}

unsafe extern "C-unwind" fn ldhexchange(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let x = u64::from_le_bytes(arg8(l, 1, "Invalid dh uint64 key"));
        if x == 0 {
            raise_here(l, "Can't be 0".to_string());
        }
        push8(l, &dh_exchange(x).to_le_bytes())
    }
}

unsafe extern "C-unwind" fn ldhsecret(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let (x, y) = arg_xy(l);
        let (x, y) = (u64::from_le_bytes(x), u64::from_le_bytes(y));
        if x == 0 || y == 0 {
            raise_here(l, "Can't be 0".to_string());
        }
        push8(l, &dh_secret(x, y).to_le_bytes())
    }
}

unsafe extern "C-unwind" fn lbase64encode(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing has a destructor.
    unsafe {
        let text = check_bytes(l, 1);
        push_filled(l, base64_encoded_len(text.len()), |out| {
            Ok(base64_encode(text, out))
        })
    }
}

unsafe extern "C-unwind" fn lbase64decode(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing has a destructor.
    unsafe {
        let text = check_bytes(l, 1);
        push_filled(l, base64_decoded_cap(text.len()), |out| {
            base64_decode(text, out).ok_or_else(|| "Invalid base64 text".to_string())
        })
    }
}

unsafe extern "C-unwind" fn lsha1(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let d = sha1(check_bytes(l, 1));
        push8(l, &d)
    }
}

unsafe extern "C-unwind" fn lhmac_sha1(l: State) -> c_int {
    // SAFETY: called by Lua with a live state.
    unsafe {
        let key = check_bytes(l, 1);
        let text = check_bytes(l, 2);
        push8(l, &hmac_sha1(key, text))
    }
}

unsafe extern "C-unwind" fn lxor_str(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing has a destructor.
    unsafe {
        let a = check_bytes(l, 1);
        let b = check_bytes(l, 2);
        if b.is_empty() {
            raise_here(l, "Can't xor empty string".to_string());
        }
        push_filled(l, a.len(), |out| {
            xor_str(a, b, out);
            Ok(out.len())
        })
    }
}

const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"hashkey", lhashkey),
    (c"randomkey", lrandomkey),
    (c"desencode", ldesencode),
    (c"desdecode", ldesdecode),
    (c"hexencode", lhexencode),
    (c"hexdecode", lhexdecode),
    (c"hmac64", lhmac64),
    (c"hmac64_md5", lhmac64_md5),
    (c"dhexchange", ldhexchange),
    (c"dhsecret", ldhsecret),
    (c"base64encode", lbase64encode),
    (c"base64decode", lbase64decode),
    (c"sha1", lsha1),
    (c"hmac_sha1", lhmac_sha1),
    (c"hmac_hash", lhmac_hash),
    (c"xor_str", lxor_str),
];

/// `require "skynet.crypt"` / `require "client.crypt"`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: called by require with a live state.
    unsafe {
        lua_createtable(l, 0, FUNCS.len() as c_int + 1);
        set_funcs(l, FUNCS, 0);
        lua_createtable(l, 0, 2);
        lua_pushinteger(l, Padding::Iso7816_4 as lua_Integer);
        lua_setfield(l, -2, c"iso7816_4".as_ptr());
        lua_pushinteger(l, Padding::Pkcs7 as lua_Integer);
        lua_setfield(l, -2, c"pkcs7".as_ptr());
        lua_setfield(l, -2, c"padding".as_ptr());
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn md5_steps_plus_iv_is_the_md5_compression() {
        // One padded block of "abc": MD5 is the steps plus the initial state.
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[56] = 24;
        let mut w = [0u32; 16];
        for (i, v) in w.iter_mut().enumerate() {
            *v = le32(&block[i * 4..]);
        }
        let r = md5_steps(&w);
        let mut digest = Vec::new();
        for (x, iv) in r.iter().zip(MD5_IV) {
            digest.extend_from_slice(&x.wrapping_add(iv).to_le_bytes());
        }
        assert_eq!(hex(&digest), hex(&md5::Md5::digest(b"abc")));
    }

    #[test]
    fn des_known_answers_and_round_trips() {
        // skynet's test/testcrypt.lua values, base64 of the cipher text.
        let key = *b"12345678";
        let mut out = [0u8; 16];
        des_encode(&key, b"hello world", Padding::Iso7816_4, &mut out);
        let mut b = [0u8; 24];
        let n = base64_encode(&out, &mut b);
        assert_eq!(&b[..n], b"KNugLrX23UcGtcVlk9y+LA==");
        des_encode(&key, b"", Padding::Pkcs7, &mut out[..8]);
        let n = base64_encode(&out[..8], &mut b);
        assert_eq!(&b[..n], b"/rlZt9RkL8s=");
        for len in 0..20 {
            let text: Vec<u8> = (0..len as u8).collect();
            for p in [Padding::Iso7816_4, Padding::Pkcs7] {
                let mut c = vec![0u8; des_encoded_len(len)];
                des_encode(&key, &text, p, &mut c);
                let mut d = vec![0u8; c.len()];
                let n = des_decode(&key, &c, p, &mut d).unwrap();
                assert_eq!(&d[..n], &text[..]);
            }
        }
        let mut d = [0u8; 8];
        assert_eq!(
            des_decode(&key, &[1; 7], Padding::Pkcs7, &mut d),
            Err(DesError::Length(7))
        );
    }

    #[test]
    fn our_des_equals_rustcrypto_des() {
        use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()
        };
        for _ in 0..2000 {
            let key = next();
            let block = next();
            let theirs = des::Des::new(&key.into());
            let mut want = block.into();
            theirs.encrypt_block(&mut want);
            let ours = Schedule::new(&key);
            let mut got = block;
            ours.apply(&mut got);
            assert_eq!(got[..], want[..], "key {key:02x?} block {block:02x?}");
            theirs.decrypt_block(&mut want);
            ours.reversed().apply(&mut got);
            assert_eq!(got, block);
        }
    }

    #[test]
    fn padding_measure_rejects_malformed_tails() {
        let iso = Padding::Iso7816_4;
        assert_eq!(iso.measure(&[1, 2, 3, 4, 5, 6, 7, 0x80]), Some(1));
        assert_eq!(iso.measure(&[0x80, 0, 0, 0, 0, 0, 0, 0]), Some(8));
        assert_eq!(iso.measure(&[0; 8]), None);
        assert_eq!(iso.measure(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
        let p7 = Padding::Pkcs7;
        assert_eq!(p7.measure(&[9, 9, 9, 9, 9, 3, 3, 3]), Some(3));
        assert_eq!(p7.measure(&[9, 9, 9, 9, 9, 2, 3, 3]), None);
        assert_eq!(p7.measure(&[0; 8]), None);
        assert_eq!(p7.measure(&[9; 8]), None);
        assert_eq!(p7.measure(&[8; 8]), Some(8));
    }

    #[test]
    fn base64_lenient_decoding() {
        let dec = |t: &[u8]| {
            let mut out = vec![0u8; base64_decoded_cap(t.len())];
            base64_decode(t, &mut out).map(|n| out[..n].to_vec())
        };
        assert_eq!(dec(b"aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(dec(b"aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(dec(b"aGV\nsbG8"), Some(b"hello".to_vec()));
        assert_eq!(dec(b"QQ==QQ=="), Some(b"AA".to_vec()));
        assert_eq!(dec(b""), Some(vec![]));
        assert_eq!(dec(b"QUJD\n"), None);
        assert_eq!(dec(b"A"), None);
        assert_eq!(dec(b"QR=="), None);
        assert_eq!(dec(b"A=A="), None);
        let mut b = [0u8; 8];
        let n = base64_encode(b"hello", &mut b);
        assert_eq!(&b[..n], b"aGVsbG8=");
    }

    #[test]
    fn hex_and_xor() {
        let mut out = [0u8; 4];
        hex_encode(&[0x01, 0xab], &mut out);
        assert_eq!(&out, b"01ab");
        let mut d = [0u8; 2];
        assert_eq!(hex_decode(b"01ab", &mut d), Some(2));
        assert_eq!(d, [0x01, 0xab]);
        assert_eq!(hex_decode(b"0g", &mut d), None);
        assert_eq!(hex_decode(b"AB", &mut d), None);
        let mut x = [0u8; 3];
        xor_str(b"abc", b"\x01", &mut x);
        assert_eq!(&x, b"`cb");
    }

    #[test]
    fn dh_agrees_both_ways() {
        let a = 0x1234_5678_9abc_def0u64;
        let b = 0x0fed_cba9_8765_4321u64;
        assert_eq!(dh_secret(dh_exchange(a), b), dh_secret(dh_exchange(b), a));
        assert_eq!(dh_exchange(1), 5);
        assert_eq!(dh_exchange(2), 25);
        assert_eq!(dh_secret(DH_P, 1), DH_P);
        assert_eq!(dh_secret(DH_P, 2), 0);
        assert_eq!(dh_secret(DH_P + 3, 1), 3);
    }

    #[test]
    fn hmac64_md5_is_folded_md5_of_the_repeated_pair() {
        let (x, y) = (*b"abcdefgh", *b"12345678");
        let m = md5::Md5::digest(b"abcdefgh12345678".repeat(3));
        let want: Vec<u8> = (0..8).map(|i| m[i] ^ m[i + 8]).collect();
        assert_eq!(hmac64_md5(&x, &y).to_vec(), want);
    }

    #[test]
    fn random_keys_are_never_all_zero() {
        assert_eq!(not_all_zero([0; 8]), [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            not_all_zero([3, 3, 0, 0, 0, 0, 0, 0]),
            [3, 3, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            not_all_zero([2, 2, 0, 0, 0, 0, 0, 0]),
            [3, 2, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            not_all_zero([1, 2, 0, 0, 0, 0, 0, 0]),
            [1, 2, 0, 0, 0, 0, 0, 0]
        );
        for _ in 0..100 {
            assert_ne!(randomkey(), [0; 8]);
        }
    }
}
