//! `http.websocket.core`: the byte work of our `http.websocket` (RFC 6455)
//! that Lua does slowly: the handshake's accept key, random client keys and
//! masking keys from the OS generator, and payload masking.
//!
//! - `accept(key)` -> base64(SHA-1(key .. GUID)), the Sec-WebSocket-Accept
//!   value for a client's Sec-WebSocket-Key.
//! - `newkey()` -> a fresh Sec-WebSocket-Key (16 random bytes, base64).
//! - `maskkey()` -> 4 random bytes, a frame's masking key.
//! - `mask(data, key)` -> data with each byte XORed with key[i % 4] (masking
//!   and unmasking are the same); key is 4 bytes.
//!
//! Results are built in fixed arrays or Lua buffers, so nothing with a
//! destructor is alive when a Lua call raises.

use super::lua::*;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::ffi::c_int;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `require "http.websocket.core"`
pub unsafe extern "C-unwind" fn open(l: State) -> c_int {
    // SAFETY: `l` is the live state calling this loader; the table is left
    // on its stack with the functions set (set_funcs with no upvalues).
    unsafe {
        lua_createtable(l, 0, 4);
        set_funcs(
            l,
            &[
                (c"accept", laccept),
                (c"newkey", lnewkey),
                (c"maskkey", lmaskkey),
                (c"mask", lmask),
            ],
            0,
        );
    }
    1
}

/// base64 of `bytes` (at most 48 of them) into a fixed buffer.
fn base64_of(bytes: &[u8], out: &mut [u8; 64]) -> usize {
    base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, out)
        .expect("64 bytes hold the base64 of 48")
}

/// The Sec-WebSocket-Accept value for `key` into `out`; its length.
fn accept_key(key: &[u8], out: &mut [u8; 64]) -> usize {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    let digest: [u8; 20] = h.finalize().into();
    base64_of(&digest, out)
}

/// Random bytes from the OS; None if it has none to give.
fn random<const N: usize>() -> Option<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).ok()?;
    Some(b)
}

/// XORs `data` with the 4-byte `key` into `out` (same length).
fn mask_into(data: &[u8], key: [u8; 4], out: &mut [u8]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact(4);
    let mut outs = out.chunks_exact_mut(4);
    for (o, c) in (&mut outs).zip(&mut chunks) {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        o.copy_from_slice(&v.to_ne_bytes());
    }
    for ((o, c), k) in outs
        .into_remainder()
        .iter_mut()
        .zip(chunks.remainder())
        .zip(key)
    {
        *o = c ^ k;
    }
}

unsafe extern "C-unwind" fn laccept(l: State) -> c_int {
    // SAFETY: argument 1 of the live state `l`; the slice lives while it
    // stays on the stack, which it does until return.
    let key = unsafe { check_bytes(l, 1) };
    let mut out = [0u8; 64];
    let n = accept_key(key, &mut out);
    // SAFETY: pushes a copy of `out[..n]`, a plain array.
    unsafe { push_bytes(l, &out[..n]) };
    1
}

unsafe extern "C-unwind" fn lnewkey(l: State) -> c_int {
    let Some(raw) = random::<16>() else {
        // SAFETY: raises on the live state `l`; nothing with a destructor is alive.
        unsafe { raise_here(l, "http.websocket.core: no random bytes".to_string()) }
    };
    let mut out = [0u8; 64];
    let n = base64_of(&raw, &mut out);
    // SAFETY: pushes a copy of a plain array.
    unsafe { push_bytes(l, &out[..n]) };
    1
}

unsafe extern "C-unwind" fn lmaskkey(l: State) -> c_int {
    let Some(key) = random::<4>() else {
        // SAFETY: raises on the live state `l`; nothing with a destructor is alive.
        unsafe { raise_here(l, "http.websocket.core: no random bytes".to_string()) }
    };
    // SAFETY: pushes a copy of a plain array.
    unsafe { push_bytes(l, &key) };
    1
}

unsafe extern "C-unwind" fn lmask(l: State) -> c_int {
    // SAFETY: arguments 1 and 2 of the live state `l`; both strings stay on
    // the stack (below the buffer) until return, so the slices stay valid.
    let (data, key) = unsafe { (check_bytes(l, 1), check_bytes(l, 2)) };
    let Ok(key) = <[u8; 4]>::try_from(key) else {
        // SAFETY: raises on `l`; nothing with a destructor is alive.
        unsafe { luaL_argerror(l, 2, c"masking key must be 4 bytes".as_ptr()) };
        return 0;
    };
    let mut b = std::mem::MaybeUninit::<luaL_Buffer>::uninit();
    // SAFETY: luaL_buffinitsize initialises `b` and gives room for
    // data.len() bytes; we write exactly that many, then push them. `b` is a
    // plain C struct, so a raise from Lua's allocator leaks nothing.
    unsafe {
        let p = luaL_buffinitsize(l, b.as_mut_ptr(), data.len()) as *mut u8;
        let out = std::slice::from_raw_parts_mut(p, data.len());
        mask_into(data, key, out);
        luaL_pushresultsize(b.as_mut_ptr(), data.len());
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example() {
        // RFC 6455 section 1.3
        let mut out = [0u8; 64];
        let n = accept_key(b"dGhlIHNhbXBsZSBub25jZQ==", &mut out);
        assert_eq!(&out[..n], b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn masking_twice_gives_the_data_back() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 1, 3, 4, 5, 8, 13, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut once = vec![0; len];
            mask_into(&data, key, &mut once);
            for (i, (m, d)) in once.iter().zip(&data).enumerate() {
                assert_eq!(*m, d ^ key[i % 4]);
            }
            let mut twice = vec![0; len];
            mask_into(&once, key, &mut twice);
            assert_eq!(twice, data);
        }
    }

    #[test]
    fn rfc_masked_hello() {
        // RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d
        let mut out = [0u8; 5];
        mask_into(b"Hello", [0x37, 0xfa, 0x21, 0x3d], &mut out);
        assert_eq!(out, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random::<16>(), random::<16>());
    }
}
