//! Addresses: name resolution (getaddrinfo, with its own error texts), the
//! listening and UDP sockets skynet creates synchronously in the caller, the
//! UDP address blob, and OS error texts.

use std::ffi::{c_int, CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// skynet's UDP protocol tags (first byte of an address blob).
pub const PROTOCOL_UDP: u8 = 1;
pub const PROTOCOL_UDPV6: u8 = 2;

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

fn sockaddr_to_std(sa: *const libc::sockaddr) -> Option<SocketAddr> {
    unsafe {
        match (*sa).sa_family as c_int {
            libc::AF_INET => {
                let v4 = &*(sa as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(v4.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let v6 = &*(sa as *const libc::sockaddr_in6);
                let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(v6.sin6_port),
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// A `sockaddr` for `bind`/`connect`.
pub fn std_to_sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Which kind of addresses to ask getaddrinfo for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// No hints at all (as `socketdriver.resolve`): every socket type.
    Any,
    Tcp,
    Udp,
}

/// getaddrinfo with AF_UNSPEC; the error is gai_strerror's text.
pub fn getaddrinfo(
    host: Option<&str>,
    port: Option<u16>,
    want: Want,
) -> Result<Vec<SocketAddr>, String> {
    let host_c = match host {
        Some(h) => Some(CString::new(h).map_err(|_| "Name or service not known".to_string())?),
        None => None,
    };
    let port_c = port.map(|p| CString::new(p.to_string()).unwrap());
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    match want {
        Want::Any => {}
        Want::Tcp => {
            hints.ai_socktype = libc::SOCK_STREAM;
            hints.ai_protocol = libc::IPPROTO_TCP;
        }
        Want::Udp => {
            hints.ai_socktype = libc::SOCK_DGRAM;
            hints.ai_protocol = libc::IPPROTO_UDP;
        }
    }
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    let status = unsafe {
        libc::getaddrinfo(
            host_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            port_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            &hints,
            &mut list,
        )
    };
    if status != 0 {
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(status)) };
        return Err(text.to_string_lossy().into_owned());
    }
    let mut out = Vec::new();
    let mut p = list;
    while !p.is_null() {
        let ai = unsafe { &*p };
        if !ai.ai_addr.is_null() {
            if let Some(a) = sockaddr_to_std(ai.ai_addr) {
                out.push(a);
            }
        }
        p = ai.ai_next;
    }
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}

/// skynet's `do_bind`: the first address of `host:port` (empty host = any IPv4),
/// a socket with SO_REUSEADDR bound to it.
pub fn bind_socket(host: &str, port: u16, udp: bool) -> io::Result<(OwnedFd, SocketAddr)> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let addrs = getaddrinfo(
        Some(host),
        Some(port),
        if udp { Want::Udp } else { Want::Tcp },
    )
    .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
    let addr = *addrs
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let ty = if udp {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    let fd: RawFd = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: c_int = 1;
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const c_int as *const libc::c_void,
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let (sa, len) = std_to_sockaddr(&addr);
    if unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((owned, addr))
}

/// A listening TCP socket (non-blocking), as `socket_server_listen` makes it.
pub fn listen_socket(host: &str, port: u16, backlog: i32) -> io::Result<std::net::TcpListener> {
    let (fd, _) = bind_socket(host, port, false)?;
    use std::os::fd::AsRawFd;
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let l = std::net::TcpListener::from(fd);
    l.set_nonblocking(true)?;
    Ok(l)
}

/// A bound UDP socket (non-blocking).
pub fn udp_socket(host: &str, port: u16) -> io::Result<std::net::UdpSocket> {
    let (fd, _) = bind_socket(host, port, true)?;
    let s = std::net::UdpSocket::from(fd);
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Turns on SO_KEEPALIVE (skynet does it for every connected TCP socket).
pub fn set_keepalive(fd: RawFd) {
    let one: c_int = 1;
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            &one as *const c_int as *const libc::c_void,
            std::mem::size_of::<c_int>() as libc::socklen_t,
        );
    }
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
        let v = getaddrinfo(Some("127.0.0.1"), Some(80), Want::Tcp).unwrap();
        assert_eq!(v, vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        let e = getaddrinfo(Some("no-such-host.invalid"), Some(80), Want::Tcp).unwrap_err();
        assert!(!e.is_empty());
    }

    #[test]
    fn error_text_is_strerror() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_error_text(&e), "Connection refused");
    }
}
