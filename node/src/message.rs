//! Messages: what travels between services, and skynet's message type numbers.
//!
//! A message owns its payload (`Vec<u8>`); an empty payload stands for skynet's NULL
//! data pointer. Ownership moves with the message, so no payload is ever shared
//! between two services.

/// skynet's message types (`PTYPE_*`, skynet.h) that the runtime itself
/// handles; skynet.lua names the others (queue, debug, snax, trace).
pub mod ptype {
    pub const TEXT: u8 = 0;
    pub const RESPONSE: u8 = 1;
    pub const MULTICAST: u8 = 2;
    pub const CLIENT: u8 = 3;
    pub const SYSTEM: u8 = 4;
    pub const HARBOR: u8 = 5;
    pub const SOCKET: u8 = 6;
    pub const ERROR: u8 = 7;
    pub const LUA: u8 = 10;
}

/// True for messages that expect an answer: a request's source waits for a
/// RESPONSE or an ERROR with its session. Replies do not, nor does a multicast
/// message (its session is a channel id).
pub fn is_request(ptype: u8) -> bool {
    ptype != ptype::RESPONSE && ptype != ptype::ERROR && ptype != ptype::MULTICAST
}

/// The largest payload skynet accepts in one local message: the type shares the
/// top byte of a 64-bit size, leaving 56 bits.
pub const MAX_MESSAGE_SIZE: usize = (1usize << 56) - 1;

/// One message in a service's queue.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Full handle of the sender (0 for the system: timer, sockets).
    pub source: u32,
    /// 0 when no reply is expected; a reply carries the request's session.
    pub session: i32,
    /// One of [`ptype`].
    pub ptype: u8,
    /// The payload; empty means "no data".
    pub data: Vec<u8>,
}

impl Message {
    pub fn new(source: u32, session: i32, ptype: u8, data: Vec<u8>) -> Self {
        Message {
            source,
            session,
            ptype,
            data,
        }
    }
}
