//! `md5.core`: the Lua API of the Kepler md5 library that skynet ships in
//! 3rd/lua-md5 and wraps in lualib/md5.lua: `sum` (the 16-byte MD5 digest),
//! `exor` (XOR of two strings of one length), and `crypt`/`decrypt`, a
//! stream cipher of MD5 in cipher-feedback mode.
//!
//! `crypt(msg, key [, seed])` returns `#seed .. seed .. stream`, where each
//! 16-byte chunk of the stream is the chunk of `msg` XORed with the MD5 of a
//! block that starts as the seed (zero-padded to 16 bytes) followed by the
//! key, and whose first bytes are then replaced by that cipher chunk. With no
//! seed the 8 bytes of the current Unix time are used, as the C library does.

use super::lua::*;
use md5::Digest as _;
use std::ffi::{c_int, CStr};

/// Seeds and keys longer than these are refused, as in the C library.
const MAX_SEED: usize = 16;
const MAX_KEY: usize = 256;

pub fn sum(text: &[u8]) -> [u8; 16] {
    md5::Md5::digest(text).into()
}

/// The feedback block: the seed zero-padded to 16 bytes, then the key.
fn feedback_block(seed: &[u8], key: &[u8]) -> ([u8; MAX_SEED + MAX_KEY], usize) {
    let mut block = [0u8; MAX_SEED + MAX_KEY];
    block[..seed.len()].copy_from_slice(seed);
    block[MAX_SEED..MAX_SEED + key.len()].copy_from_slice(key);
    (block, MAX_SEED + key.len())
}

/// Runs the feedback stream over `input` into `out`; `encrypting` says
/// whether the output (cipher text) or the input is fed back.
fn stream(seed: &[u8], key: &[u8], input: &[u8], out: &mut [u8], encrypting: bool) {
    let (mut block, len) = feedback_block(seed, key);
    for (chunk, o) in input.chunks(16).zip(out.chunks_mut(16)) {
        let pad = sum(&block[..len]);
        for ((o, &c), &p) in o.iter_mut().zip(chunk).zip(&pad) {
            *o = c ^ p;
        }
        let cipher: &[u8] = if encrypting { o } else { chunk };
        block[..chunk.len()].copy_from_slice(cipher);
    }
}

/// `crypt` into `out` (`2 + seed + msg` bytes at most): the seed length
/// byte, the seed, the cipher stream. Returns the length written.
pub fn encrypt(msg: &[u8], key: &[u8], seed: &[u8], out: &mut [u8]) -> usize {
    out[0] = seed.len() as u8;
    out[1..1 + seed.len()].copy_from_slice(seed);
    let body = &mut out[1 + seed.len()..1 + seed.len() + msg.len()];
    stream(seed, key, msg, body, true);
    1 + seed.len() + msg.len()
}

/// The seed and the cipher stream of a `crypt` result, if it has that form.
/// (The C library reads the length byte as a signed char, so 0x80 and above
/// never form a valid seed length.)
pub fn split_cypher(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = *text.first()? as usize;
    if n > MAX_SEED || text.len() < n + 1 {
        return None;
    }
    Some((&text[1..1 + n], &text[1 + n..]))
}

pub fn decrypt(body: &[u8], key: &[u8], seed: &[u8], out: &mut [u8]) {
    stream(seed, key, body, out, false);
}

unsafe extern "C-unwind" fn lsum(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; nothing has a destructor.
    unsafe {
        let d = sum(check_bytes(l, 1));
        push_bytes(l, &d);
    }
    1
}

unsafe extern "C-unwind" fn lexor(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; the strings stay on the
    // stack; the userdata is the scratch buffer and lives until return.
    unsafe {
        let a = check_bytes(l, 1);
        let b = check_bytes(l, 2);
        if a.len() != b.len() {
            return luaL_argerror(l, 2, c"lengths must be equal".as_ptr());
        }
        let p = lua_newuserdatauv(l, a.len(), 0) as *mut u8;
        let out = std::slice::from_raw_parts_mut(p, a.len());
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = x ^ y;
        }
        push_bytes(l, out);
    }
    1
}

/// Checks the key argument 2.
///
/// # Safety
/// `l` is a live state; may raise.
unsafe fn arg_key<'a>(l: State) -> &'a [u8] {
    // SAFETY: a live state; nothing has a destructor.
    unsafe {
        let key = check_bytes(l, 2);
        if key.len() > MAX_KEY {
            raise_here(l, format!("key too long (> {MAX_KEY})"));
        }
        key
    }
}

unsafe extern "C-unwind" fn lcrypt(l: State) -> c_int {
    // SAFETY: called by Lua with a live state; the strings stay on the
    // stack, the userdata is the scratch buffer until return.
    unsafe {
        let msg = check_bytes(l, 1);
        if lua_isnone(l, 3) != 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            push_bytes(l, &now.to_le_bytes());
        }
        let seed = check_bytes(l, 3);
        if seed.len() > MAX_SEED {
            raise_here(l, format!("seed too long (> {MAX_SEED})"));
        }
        let key = arg_key(l);
        let cap = 1 + seed.len() + msg.len();
        let p = lua_newuserdatauv(l, cap, 0) as *mut u8;
        let out = std::slice::from_raw_parts_mut(p, cap);
        let n = encrypt(msg, key, seed, out);
        push_bytes(l, &out[..n]);
    }
    1
}

unsafe extern "C-unwind" fn ldecrypt(l: State) -> c_int {
    // SAFETY: as lcrypt.
    unsafe {
        let text = check_bytes(l, 1);
        let Some((seed, body)) = split_cypher(text) else {
            return luaL_argerror(l, 1, c"invalid cyphered string".as_ptr());
        };
        let key = arg_key(l);
        let p = lua_newuserdatauv(l, body.len(), 0) as *mut u8;
        let out = std::slice::from_raw_parts_mut(p, body.len());
        decrypt(body, key, seed, out);
        push_bytes(l, out);
    }
    1
}

const FUNCS: &[(&CStr, lua_CFunction)] = &[
    (c"sum", lsum),
    (c"exor", lexor),
    (c"crypt", lcrypt),
    (c"decrypt", ldecrypt),
];

/// `require "md5.core"`.
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: called by require with a live state.
    unsafe {
        lua_createtable(l, 0, FUNCS.len() as c_int + 3);
        set_funcs(l, FUNCS, 0);
        for (k, v) in [
            (c"_COPYRIGHT", c"Copyright (C) 2003-2013 PUC-Rio"),
            (c"_DESCRIPTION", c"Basic cryptographic facilities"),
            (c"_VERSION", c"MD5 1.2"),
        ] {
            lua_pushstring(l, v.as_ptr());
            lua_setfield(l, -2, k.as_ptr());
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_round_trips_and_feeds_back_cipher_text() {
        let msg: Vec<u8> = (0..40u8).collect();
        let mut c = vec![0u8; 1 + 3 + msg.len()];
        let n = encrypt(&msg, b"key", b"abc", &mut c);
        assert_eq!(n, c.len());
        assert_eq!(&c[..4], b"\x03abc");
        let (seed, body) = split_cypher(&c).unwrap();
        let mut d = vec![0u8; body.len()];
        decrypt(body, b"key", seed, &mut d);
        assert_eq!(d, msg);
        // the first chunk is the message XOR md5(seed padded .. key)
        let mut block = b"abc".to_vec();
        block.resize(16, 0);
        block.extend_from_slice(b"key");
        let pad = sum(&block);
        assert_eq!(c[4] ^ pad[0], msg[0]);
    }

    #[test]
    fn malformed_cypher_text_is_refused() {
        assert!(split_cypher(b"").is_none());
        assert!(split_cypher(b"\x80abc").is_none());
        assert!(split_cypher(b"\x05abc").is_none());
        assert!(split_cypher(&[17; 30]).is_none());
        assert_eq!(split_cypher(b"\x00"), Some((&b""[..], &b""[..])));
    }
}
