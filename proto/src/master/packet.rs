//! [`MasterPacket`]: one master protocol packet, and the mapping between it
//! and its seri body.
//!
//! Parsing is strict: exactly the arguments of the letter, with the right
//! types. Harbor ids must be integers in 0..=255 (whether 0 is acceptable is
//! the master's decision, not the format's), handles integers in
//! 0..=0xffffffff, names valid [`GlobalName`]s, addresses UTF-8 strings.
//!
//! Beyond skynet (see the module table in [`super`]): `W` may carry two more
//! values, the set of harbors that will connect and a master proof; `P`, `K`
//! and `A` are letters of our own. A C skynet slave reads only the first two
//! values of `W` and ignores letters it does not know, so our master can
//! send them to it; a C skynet master sends none of them.

use std::fmt;

use bytes::BufMut;

use super::error::PacketError;
use crate::auth::{MAC_LEN, NONCE_LEN};
use crate::global_name::GlobalName;
use crate::handle::Handle;
use crate::seri::{Item, PackError, SeriReader, SeriWriter};

/// One master <-> slave packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterPacket {
    /// `H`: a slave introduces itself with its harbor id and the address its
    /// harbor listens on.
    Handshake {
        /// The slave's harbor id.
        harbor: u8,
        /// Its listen address, `"host:port"`.
        address: String,
    },
    /// `W`: answer to `H`; this many existing slaves will connect to the
    /// newcomer.
    Wait {
        /// Number of slaves that will connect.
        count: u8,
        /// Which ones (our master only; a C skynet master sends just the
        /// count).
        peers: Option<HarborSet>,
        /// With a cluster secret: the master's answer to the slave's
        /// challenge (`A`), see [`crate::auth`]. Only after `peers`.
        proof: Option<[u8; MAC_LEN]>,
    },
    /// `P` (ours): harbor `harbor`, listening on `address`, is one of the
    /// slaves that will connect to the newcomer; sent right after `W`.
    Peer {
        /// Its harbor id.
        harbor: u8,
        /// The address it announced in its `H`.
        address: String,
    },
    /// `K` (ours): the master's challenge to a slave, instead of `W`, when
    /// the master has a cluster secret.
    Challenge {
        /// The master's nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// `A` (ours): a slave's answer to `K`, with its own challenge.
    Answer {
        /// The slave's nonce.
        nonce: [u8; NONCE_LEN],
        /// Its proof of the secret, see [`crate::auth`].
        mac: [u8; MAC_LEN],
    },
    /// `C`: connect to a newcomer.
    Connect {
        /// The newcomer's harbor id.
        harbor: u8,
        /// Its listen address.
        address: String,
    },
    /// `R`: register a global name for a handle.
    Register {
        /// The name.
        name: GlobalName,
        /// The handle it names.
        handle: Handle,
    },
    /// `Q`: ask for the handle of a global name.
    Query {
        /// The name.
        name: GlobalName,
    },
    /// `N`: a global name is bound to a handle.
    Name {
        /// The name.
        name: GlobalName,
        /// Its handle.
        handle: Handle,
    },
    /// `D`: a slave went down.
    Down {
        /// Its harbor id.
        harbor: u8,
    },
}

impl MasterPacket {
    /// The packet's letter.
    pub fn letter(&self) -> u8 {
        match self {
            MasterPacket::Handshake { .. } => b'H',
            MasterPacket::Wait { .. } => b'W',
            MasterPacket::Connect { .. } => b'C',
            MasterPacket::Register { .. } => b'R',
            MasterPacket::Query { .. } => b'Q',
            MasterPacket::Name { .. } => b'N',
            MasterPacket::Down { .. } => b'D',
            MasterPacket::Peer { .. } => b'P',
            MasterPacket::Challenge { .. } => b'K',
            MasterPacket::Answer { .. } => b'A',
        }
    }

    /// Parses a packet body (the bytes after the length byte).
    pub fn parse(body: &[u8]) -> Result<MasterPacket, PacketError> {
        let mut reader = SeriReader::new(body);
        let letter = match reader.next_item()? {
            None => return Err(PacketError::Empty),
            Some(Item::String(&[letter])) => letter,
            Some(_) => return Err(PacketError::BadLetter),
        };
        let mut args = Args { reader, letter };
        let packet = match letter {
            b'H' => MasterPacket::Handshake {
                harbor: args.harbor()?,
                address: args.address()?,
            },
            b'W' => {
                let count = args.small_integer("slave count")?;
                let peers = match args.optional_bytes("harbor set")? {
                    None => None,
                    Some(b) => Some(HarborSet::from_bytes(b).ok_or(PacketError::WrongType {
                        letter,
                        what: "harbor set",
                        expected: "a 32-byte string",
                    })?),
                };
                let proof = match peers {
                    None => None,
                    Some(_) => args.optional_fixed::<MAC_LEN>("proof")?,
                };
                MasterPacket::Wait {
                    count,
                    peers,
                    proof,
                }
            }
            b'P' => MasterPacket::Peer {
                harbor: args.harbor()?,
                address: args.address()?,
            },
            b'K' => MasterPacket::Challenge {
                nonce: args.fixed::<NONCE_LEN>("nonce")?,
            },
            b'A' => MasterPacket::Answer {
                nonce: args.fixed::<NONCE_LEN>("nonce")?,
                mac: args.fixed::<MAC_LEN>("mac")?,
            },
            b'C' => MasterPacket::Connect {
                harbor: args.harbor()?,
                address: args.address()?,
            },
            b'R' => MasterPacket::Register {
                name: args.name()?,
                handle: args.handle()?,
            },
            b'Q' => MasterPacket::Query { name: args.name()? },
            b'N' => MasterPacket::Name {
                name: args.name()?,
                handle: args.handle()?,
            },
            b'D' => MasterPacket::Down {
                harbor: args.harbor()?,
            },
            other => return Err(PacketError::UnknownLetter(other)),
        };
        args.finish()?;
        Ok(packet)
    }

    /// Appends the packet body (without the length byte) to `buf`. Fails
    /// only for an address too long for any seri string; the framing refuses
    /// bodies over 255 bytes anyway.
    pub fn write_body<B: BufMut>(&self, buf: &mut B) -> Result<(), PackError> {
        let mut w = SeriWriter::new(buf);
        w.string(&[self.letter()])?;
        match self {
            MasterPacket::Handshake { harbor, address }
            | MasterPacket::Connect { harbor, address }
            | MasterPacket::Peer { harbor, address } => {
                w.integer(i64::from(*harbor));
                w.string(address.as_bytes())?;
            }
            MasterPacket::Wait {
                count,
                peers,
                proof,
            } => {
                w.integer(i64::from(*count));
                if let Some(peers) = peers {
                    w.string(&peers.0)?;
                    if let Some(proof) = proof {
                        w.string(proof)?;
                    }
                }
            }
            MasterPacket::Challenge { nonce } => w.string(nonce)?,
            MasterPacket::Answer { nonce, mac } => {
                w.string(nonce)?;
                w.string(mac)?;
            }
            MasterPacket::Register { name, handle } | MasterPacket::Name { name, handle } => {
                w.string(name.as_bytes())?;
                w.integer(i64::from(handle.raw()));
            }
            MasterPacket::Query { name } => w.string(name.as_bytes())?,
            MasterPacket::Down { harbor } => w.integer(i64::from(*harbor)),
        }
        Ok(())
    }
}

impl fmt::Display for MasterPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterPacket::Handshake { harbor, address } => write!(f, "H {harbor} {address:?}"),
            MasterPacket::Wait {
                count,
                peers,
                proof,
            } => {
                write!(f, "W {count}")?;
                if let Some(peers) = peers {
                    write!(f, " {peers}")?;
                }
                if proof.is_some() {
                    write!(f, " <proof>")?;
                }
                Ok(())
            }
            MasterPacket::Peer { harbor, address } => write!(f, "P {harbor} {address:?}"),
            MasterPacket::Challenge { .. } => write!(f, "K <nonce>"),
            MasterPacket::Answer { .. } => write!(f, "A <nonce> <mac>"),
            MasterPacket::Connect { harbor, address } => write!(f, "C {harbor} {address:?}"),
            MasterPacket::Register { name, handle } => write!(f, "R \"{name}\" {handle}"),
            MasterPacket::Query { name } => write!(f, "Q \"{name}\""),
            MasterPacket::Name { name, handle } => write!(f, "N \"{name}\" {handle}"),
            MasterPacket::Down { harbor } => write!(f, "D {harbor}"),
        }
    }
}

/// Reads the arguments of one packet, naming the letter in errors.
struct Args<'a> {
    reader: SeriReader<'a>,
    letter: u8,
}

impl<'a> Args<'a> {
    fn next(&mut self, what: &'static str) -> Result<Item<'a>, PacketError> {
        self.reader
            .next_item()?
            .ok_or(PacketError::MissingArgument {
                letter: self.letter,
                what,
            })
    }

    fn wrong_type(&self, what: &'static str, expected: &'static str) -> PacketError {
        PacketError::WrongType {
            letter: self.letter,
            what,
            expected,
        }
    }

    fn integer(&mut self, what: &'static str) -> Result<i64, PacketError> {
        match self.next(what)? {
            Item::Integer(i) => Ok(i),
            _ => Err(self.wrong_type(what, "an integer")),
        }
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], PacketError> {
        match self.next(what)? {
            Item::String(s) => Ok(s),
            _ => Err(self.wrong_type(what, "a string")),
        }
    }

    /// The next argument if there is one: it must be a string.
    fn optional_bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, PacketError> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        self.bytes(what).map(Some)
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PacketError> {
        let b = self.bytes(what)?;
        <[u8; N]>::try_from(b).map_err(|_| PacketError::BadLength {
            letter: self.letter,
            what,
            expected: N,
            got: b.len(),
        })
    }

    fn optional_fixed<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<Option<[u8; N]>, PacketError> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        self.fixed(what).map(Some)
    }

    fn small_integer(&mut self, what: &'static str) -> Result<u8, PacketError> {
        let value = self.integer(what)?;
        u8::try_from(value).map_err(|_| PacketError::OutOfRange {
            letter: self.letter,
            what,
            value,
        })
    }

    fn harbor(&mut self) -> Result<u8, PacketError> {
        self.small_integer("harbor id")
    }

    fn handle(&mut self) -> Result<Handle, PacketError> {
        let value = self.integer("handle")?;
        u32::try_from(value)
            .map(Handle)
            .map_err(|_| PacketError::OutOfRange {
                letter: self.letter,
                what: "handle",
                value,
            })
    }

    fn name(&mut self) -> Result<GlobalName, PacketError> {
        let letter = self.letter;
        let bytes = self.bytes("name")?;
        GlobalName::new(bytes).map_err(|source| PacketError::Name { letter, source })
    }

    fn address(&mut self) -> Result<String, PacketError> {
        let letter = self.letter;
        let bytes = self.bytes("address")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| PacketError::AddressNotUtf8 { letter })
    }

    fn finish(self) -> Result<(), PacketError> {
        if self.reader.is_empty() {
            Ok(())
        } else {
            Err(PacketError::ExtraArguments {
                letter: self.letter,
            })
        }
    }
}

/// A set of harbor ids (0..=255) as the 32-byte bitmap `W` carries: bit
/// `id % 8` of byte `id / 8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HarborSet(pub [u8; 32]);

impl HarborSet {
    /// The empty set.
    pub fn new() -> Self {
        HarborSet([0; 32])
    }

    /// The set in `bytes`, if it is 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(HarborSet)
    }

    /// Adds `id`.
    pub fn insert(&mut self, id: u8) {
        self.0[usize::from(id / 8)] |= 1 << (id % 8);
    }

    /// True if `id` is in the set.
    pub fn contains(&self, id: u8) -> bool {
        self.0[usize::from(id / 8)] & (1 << (id % 8)) != 0
    }

    /// The ids in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|&id| self.contains(id))
    }
}

impl FromIterator<u8> for HarborSet {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Self {
        let mut s = HarborSet::new();
        for id in iter {
            s.insert(id);
        }
        s
    }
}

impl fmt::Display for HarborSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, id) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: &MasterPacket) -> MasterPacket {
        let mut body = Vec::new();
        p.write_body(&mut body).unwrap();
        MasterPacket::parse(&body).unwrap()
    }

    #[test]
    fn our_letters_round_trip() {
        let peers: HarborSet = [1, 7, 255].into_iter().collect();
        assert!(peers.contains(7) && !peers.contains(8));
        assert_eq!(peers.iter().collect::<Vec<_>>(), vec![1, 7, 255]);
        for p in [
            MasterPacket::Wait {
                count: 3,
                peers: Some(peers),
                proof: None,
            },
            MasterPacket::Wait {
                count: 3,
                peers: Some(peers),
                proof: Some([9; MAC_LEN]),
            },
            MasterPacket::Peer {
                harbor: 7,
                address: "10.0.0.7:2526".into(),
            },
            MasterPacket::Challenge {
                nonce: [1; NONCE_LEN],
            },
            MasterPacket::Answer {
                nonce: [2; NONCE_LEN],
                mac: [3; MAC_LEN],
            },
        ] {
            assert_eq!(round_trip(&p), p);
        }
        assert_eq!(
            MasterPacket::Wait {
                count: 3,
                peers: Some(peers),
                proof: None
            }
            .to_string(),
            "W 3 {1,7,255}"
        );
    }

    #[test]
    fn a_c_slave_reads_our_wait_as_its_own() {
        // skynet's cslave unpacks `W` into (letter, count) and drops the
        // rest: our longer `W` starts with the same bytes as skynet's.
        let mut ours = Vec::new();
        MasterPacket::Wait {
            count: 1,
            peers: Some([2].into_iter().collect()),
            proof: None,
        }
        .write_body(&mut ours)
        .unwrap();
        assert_eq!(&ours[..4], &[0x0c, b'W', 0x0a, 0x01]);
    }

    #[test]
    fn bad_lengths_are_refused() {
        let mut body = Vec::new();
        let mut w = SeriWriter::new(&mut body);
        w.string(b"K").unwrap();
        w.string(b"short").unwrap();
        assert_eq!(
            MasterPacket::parse(&body),
            Err(PacketError::BadLength {
                letter: b'K',
                what: "nonce",
                expected: NONCE_LEN,
                got: 5
            })
        );
        let mut body = Vec::new();
        let mut w = SeriWriter::new(&mut body);
        w.string(b"W").unwrap();
        w.integer(1);
        w.string(b"not 32 bytes").unwrap();
        assert!(MasterPacket::parse(&body).is_err());
    }
}
