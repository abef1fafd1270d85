//! Addresses: name resolution (the system resolver, with getaddrinfo's error
//! texts), the listening and UDP sockets skynet creates synchronously in the
//! caller, the UDP address blob, and OS error texts.

use socket2::{Domain, SockRef, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;

/// skynet's UDP protocol tags (first byte of an address blob).
pub const PROTOCOL_UDP: u8 = 1;
pub const PROTOCOL_UDPV6: u8 = 2;

/// The text of getaddrinfo's EAI_NONAME, for a name no resolver would take.
const NO_NAME: &str = "Name or service not known";
/// What the standard library puts before gai_strerror's text.
const LOOKUP_PREFIX: &str = "failed to lookup address information: ";

/// strerror's text for an I/O error (without Rust's " (os error N)" suffix).
pub fn os_error_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let s = io::Error::from_raw_os_error(code).to_string();
            match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

/// The IP part of an address as inet_ntop prints it.
pub fn ip_text(a: &SocketAddr) -> String {
    a.ip().to_string()
}

/// The addresses of `host` (a name or a literal) with `port`, in the
/// resolver's order; the error is getaddrinfo's text (gai_strerror, or
/// strerror for a system error).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if host.contains('\0') {
        return Err(NO_NAME.to_string());
    }
    match (host, port).to_socket_addrs() {
        Ok(list) => Ok(list.collect()),
        Err(e) if e.raw_os_error().is_some() => Err(os_error_text(&e)),
        Err(e) => {
            let text = e.to_string();
            Err(match text.strip_prefix(LOOKUP_PREFIX) {
                Some(gai) => gai.to_string(),
                None => text,
            })
        }
    }
}

/// skynet's `do_bind`: the first address of `host:port` (empty host = any IPv4),
/// a socket with SO_REUSEADDR bound to it.
fn bind_socket(host: &str, port: u16, ty: Type) -> io::Result<Socket> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let addrs = resolve(host, port).map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
    let addr = *addrs
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let sock = Socket::new(Domain::for_address(addr), ty, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

/// A listening TCP socket (non-blocking), as `socket_server_listen` makes it.
pub fn listen_socket(host: &str, port: u16, backlog: i32) -> io::Result<std::net::TcpListener> {
    let sock = bind_socket(host, port, Type::STREAM)?;
    sock.listen(backlog)?;
    let l = std::net::TcpListener::from(sock);
    l.set_nonblocking(true)?;
    Ok(l)
}

/// A bound UDP socket (non-blocking).
pub fn udp_socket(host: &str, port: u16) -> io::Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::from(bind_socket(host, port, Type::DGRAM)?);
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Turns on SO_KEEPALIVE (skynet does it for every connected TCP socket);
/// a failure is ignored, as skynet does.
pub fn set_keepalive(sock: &impl AsFd) {
    let _ = SockRef::from(sock).set_keepalive(true);
}

/// The UDP address blob: protocol byte, port (network order), raw address.
pub fn udp_blob(a: &SocketAddr) -> Vec<u8> {
    let mut v = Vec::with_capacity(19);
    match a {
        SocketAddr::V4(v4) => {
            v.push(PROTOCOL_UDP);
            v.extend_from_slice(&v4.port().to_be_bytes());
            v.extend_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            v.push(PROTOCOL_UDPV6);
            v.extend_from_slice(&v6.port().to_be_bytes());
            v.extend_from_slice(&v6.ip().octets());
        }
    }
    v
}

/// Reads a UDP address blob (the protocol byte decides the length; extra bytes
/// are ignored, as skynet reads only what the protocol needs).
pub fn blob_to_addr(b: &[u8]) -> Option<SocketAddr> {
    match *b.first()? {
        PROTOCOL_UDP if b.len() >= 7 => {
            let port = u16::from_be_bytes([b[1], b[2]]);
            let ip = Ipv4Addr::new(b[3], b[4], b[5], b[6]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        PROTOCOL_UDPV6 if b.len() >= 19 => {
            let port = u16::from_be_bytes([b[1], b[2]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[3..19]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip() {
        let a: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let b = udp_blob(&a);
        assert_eq!(b, vec![1, 0x1f, 0x41, 127, 0, 0, 1]);
        assert_eq!(blob_to_addr(&b), Some(a));
        let a6: SocketAddr = "[::1]:53".parse().unwrap();
        let b6 = udp_blob(&a6);
        assert_eq!(b6.len(), 19);
        assert_eq!(b6[0], 2);
        assert_eq!(blob_to_addr(&b6), Some(a6));
        assert_eq!(blob_to_addr(&[3, 0, 0]), None);
        assert_eq!(blob_to_addr(&[1, 0, 0]), None);
    }

    #[test]
    fn resolves_literals_and_reports_gai_errors() {
        let v = resolve("127.0.0.1", 80).unwrap();
        assert_eq!(v, vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        let v6 = resolve("::1", 53).unwrap();
        assert_eq!(v6, vec!["[::1]:53".parse::<SocketAddr>().unwrap()]);
        let e = resolve("no-such-host.invalid", 80).unwrap_err();
        assert!(!e.is_empty());
        assert!(
            !e.starts_with("failed to lookup"),
            "gai_strerror's text alone: {e}"
        );
        assert_eq!(resolve("a\0b", 80).unwrap_err(), NO_NAME);
    }

    #[test]
    fn bound_sockets_reuse_the_address() {
        let l = listen_socket("127.0.0.1", 0, 8).unwrap();
        let a = l.local_addr().unwrap();
        assert!(a.ip().is_loopback() && a.port() != 0);
        assert!(SockRef::from(&l).reuse_address().unwrap());
        let u = udp_socket("", 0).unwrap();
        assert!(u.local_addr().unwrap().ip().is_unspecified());
        assert!(SockRef::from(&u).reuse_address().unwrap());
        let e = listen_socket("no-such-host.invalid", 0, 8).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        set_keepalive(&l);
    }

    #[test]
    fn error_text_is_strerror() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_error_text(&e), "Connection refused");
    }
}
