//! [`MasterPacket`]: one master protocol packet, and the mapping between it
//! and its seri body.
//!
//! Parsing is strict: exactly the arguments of the letter, with the right
//! types. Harbor ids must be integers in 0..=255 (whether 0 is acceptable is
//! the master's decision, not the format's), handles integers in
//! 0..=0xffffffff, names valid [`GlobalName`]s, addresses UTF-8 strings.

use std::fmt;

use bytes::BufMut;

use super::error::PacketError;
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
            b'W' => MasterPacket::Wait {
                count: args.small_integer("slave count")?,
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
            | MasterPacket::Connect { harbor, address } => {
                w.integer(i64::from(*harbor));
                w.string(address.as_bytes())?;
            }
            MasterPacket::Wait { count } => w.integer(i64::from(*count)),
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
            MasterPacket::Wait { count } => write!(f, "W {count}"),
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
