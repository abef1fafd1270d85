//! The cluster secret's challenge-response proofs (ours, not skynet's): the
//! bytes a slave and the master, or two harbors, exchange to show that both
//! know the shared `cluster_secret` without sending it.
//!
//! Each side sends a fresh random nonce; each proof is an HMAC-SHA256 under
//! the secret of a label naming the exchange and the role of the prover, the
//! harbor ids (and the slave's announced address), and both nonces. A proof
//! is only good for the nonces of its own exchange, so a recorded one cannot
//! be replayed, and one role's proof is not the other's.
//!
//! This authenticates the two ends of a connection when it is set up; it
//! neither encrypts nor signs the traffic that follows.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// Length of a nonce.
pub const NONCE_LEN: usize = 16;
/// Length of a proof (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its bytes; an empty one is refused.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Secret> {
        let bytes = bytes.into();
        (!bytes.is_empty()).then_some(Secret(bytes))
    }

    fn hmac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(label);
        for p in parts {
            // Length-prefixed, so that no two lists of parts give the same bytes.
            m.update(&(p.len() as u32).to_be_bytes());
            m.update(p);
        }
        m
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
        self.hmac(label, parts).finalize().into_bytes().into()
    }

    /// Compares in constant time.
    fn verify(&self, label: &[u8], parts: &[&[u8]], mac: &[u8]) -> bool {
        self.hmac(label, parts).verify_slice(mac).is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// A fresh random nonce from the operating system.
pub fn nonce() -> Result<[u8; NONCE_LEN], String> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut n).map_err(|e| format!("no random bytes for a nonce: {e}"))?;
    Ok(n)
}

/// Who proves, in the slave <-> master exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterRole {
    /// The slave, in its `A` (answer to the master's `K`).
    Slave,
    /// The master, in its `W`.
    Master,
}

/// The proof of `role` for the slave `harbor` that announced `address`,
/// in the exchange of `master_nonce` (`K`) and `slave_nonce` (`A`).
pub fn master_proof(
    secret: &Secret,
    role: MasterRole,
    harbor: u8,
    address: &str,
    master_nonce: &[u8; NONCE_LEN],
    slave_nonce: &[u8; NONCE_LEN],
) -> [u8; MAC_LEN] {
    let (label, parts) = master_parts(role, &harbor, address, master_nonce, slave_nonce);
    secret.mac(label, &parts)
}

/// Checks a proof made by [`master_proof`].
pub fn check_master_proof(
    secret: &Secret,
    role: MasterRole,
    harbor: u8,
    address: &str,
    master_nonce: &[u8; NONCE_LEN],
    slave_nonce: &[u8; NONCE_LEN],
    mac: &[u8],
) -> bool {
    let (label, parts) = master_parts(role, &harbor, address, master_nonce, slave_nonce);
    secret.verify(label, &parts, mac)
}

/// What a master proof is the MAC of.
fn master_parts<'a>(
    role: MasterRole,
    harbor: &'a u8,
    address: &'a str,
    master_nonce: &'a [u8; NONCE_LEN],
    slave_nonce: &'a [u8; NONCE_LEN],
) -> (&'static [u8], [&'a [u8]; 4]) {
    let label: &[u8] = match role {
        MasterRole::Slave => b"skynet-rs master handshake v1: slave",
        MasterRole::Master => b"skynet-rs master handshake v1: master",
    };
    (
        label,
        [
            std::slice::from_ref(harbor),
            address.as_bytes(),
            master_nonce,
            slave_nonce,
        ],
    )
}

/// Who proves, in the harbor <-> harbor exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRole {
    /// The side that connected (the older harbor).
    Connector,
    /// The side that accepted.
    Acceptor,
}

/// The proof of `role` on the link from harbor `connector` to harbor
/// `acceptor`, in the exchange of `acceptor_nonce` and `connector_nonce`.
pub fn link_proof(
    secret: &Secret,
    role: LinkRole,
    connector: u8,
    acceptor: u8,
    acceptor_nonce: &[u8; NONCE_LEN],
    connector_nonce: &[u8; NONCE_LEN],
) -> [u8; MAC_LEN] {
    let ids = [connector, acceptor];
    let (label, parts) = link_parts(role, &ids, acceptor_nonce, connector_nonce);
    secret.mac(label, &parts)
}

/// Checks a proof made by [`link_proof`].
pub fn check_link_proof(
    secret: &Secret,
    role: LinkRole,
    connector: u8,
    acceptor: u8,
    acceptor_nonce: &[u8; NONCE_LEN],
    connector_nonce: &[u8; NONCE_LEN],
    mac: &[u8],
) -> bool {
    let ids = [connector, acceptor];
    let (label, parts) = link_parts(role, &ids, acceptor_nonce, connector_nonce);
    secret.verify(label, &parts, mac)
}

/// What a link proof is the MAC of; `ids` are the connector's and the
/// acceptor's harbor ids, in that order.
fn link_parts<'a>(
    role: LinkRole,
    ids: &'a [u8; 2],
    acceptor_nonce: &'a [u8; NONCE_LEN],
    connector_nonce: &'a [u8; NONCE_LEN],
) -> (&'static [u8], [&'a [u8]; 3]) {
    let label: &[u8] = match role {
        LinkRole::Connector => b"skynet-rs harbor handshake v1: connector",
        LinkRole::Acceptor => b"skynet-rs harbor handshake v1: acceptor",
    };
    (label, [ids, acceptor_nonce, connector_nonce])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_depend_on_secret_role_ids_and_nonces() {
        let s = Secret::new("hunter2").unwrap();
        let other = Secret::new("hunter3").unwrap();
        let (a, c) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let p = link_proof(&s, LinkRole::Connector, 1, 2, &a, &c);
        assert!(check_link_proof(&s, LinkRole::Connector, 1, 2, &a, &c, &p));
        assert!(!check_link_proof(
            &other,
            LinkRole::Connector,
            1,
            2,
            &a,
            &c,
            &p
        ));
        assert!(!check_link_proof(&s, LinkRole::Acceptor, 1, 2, &a, &c, &p));
        assert!(!check_link_proof(&s, LinkRole::Connector, 3, 2, &a, &c, &p));
        assert!(!check_link_proof(&s, LinkRole::Connector, 1, 2, &c, &a, &p));
        assert!(!check_link_proof(
            &s,
            LinkRole::Connector,
            1,
            2,
            &a,
            &c,
            &p[..31]
        ));

        let m = master_proof(&s, MasterRole::Slave, 4, "10.0.0.4:2526", &a, &c);
        assert!(check_master_proof(
            &s,
            MasterRole::Slave,
            4,
            "10.0.0.4:2526",
            &a,
            &c,
            &m
        ));
        assert!(!check_master_proof(
            &s,
            MasterRole::Master,
            4,
            "10.0.0.4:2526",
            &a,
            &c,
            &m
        ));
        assert!(!check_master_proof(
            &s,
            MasterRole::Slave,
            4,
            "10.0.0.5:2526",
            &a,
            &c,
            &m
        ));
        assert_ne!(m, p);
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256 per RFC 4231 test case 2 ("Jefe"), through our framing
        // of no parts: the label is the whole message.
        let s = Secret::new("Jefe").unwrap();
        let mac = s.mac(b"what do ya want for nothing?", &[]);
        assert_eq!(mac[..8], [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]);
    }

    #[test]
    fn proof_bytes_are_pinned() {
        // Our framing of each exchange (label, then each part with its u32
        // big-endian length), checked against Python's hmac module.
        let s = Secret::new("hunter2").unwrap();
        let (a, c) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let hex =
            |p: [u8; MAC_LEN]| -> String { p[..8].iter().map(|b| format!("{b:02x}")).collect() };
        let address = "10.0.0.4:2526";
        let got = [
            hex(link_proof(&s, LinkRole::Connector, 1, 2, &a, &c)),
            hex(link_proof(&s, LinkRole::Acceptor, 1, 2, &a, &c)),
            hex(master_proof(&s, MasterRole::Slave, 4, address, &a, &c)),
            hex(master_proof(&s, MasterRole::Master, 4, address, &a, &c)),
        ];
        assert_eq!(
            got,
            [
                "da7abd48ec2cf009",
                "e4dd564f4f050213",
                "dd3fcc55897a79cd",
                "a62eb869bf19b230"
            ]
        );
    }

    #[test]
    fn secrets_and_nonces() {
        assert!(Secret::new("").is_none());
        assert_eq!(
            format!("{:?}", Secret::new("abc").unwrap()),
            "Secret(<3 bytes>)"
        );
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
