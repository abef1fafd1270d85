//! Socket details of the cluster links: listen/connect addresses, the TCP
//! options that make a dead peer visible (keepalive, user timeout), dialing,
//! the one-byte id handshake, the cluster secret's exchange after it, and
//! the check of a peer's IP against the address it announced.
//!
//! With a cluster secret (ours, off by default) the handshake goes on after
//! the id bytes, so that without it the bytes are skynet's:
//!
//! ```text
//! connector -> acceptor   id byte
//! acceptor  -> connector  id byte, acceptor nonce (16)
//! connector -> acceptor   connector nonce (16), connector proof (32)
//! acceptor  -> connector  acceptor proof (32)
//! ```
//! The proofs are [`skynet_proto::auth::link_proof`]s; each side drops the
//! connection when the other's is wrong.

use skynet_proto::auth::{self, LinkRole, Secret, MAC_LEN, NONCE_LEN};
use skynet_proto::harbor::{check_handshake, handshake_byte};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP keepalive: first probe after this much silence.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(2);
/// TCP keepalive: time between probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// TCP keepalive: unanswered probes before the kernel resets the connection.
pub const KEEPALIVE_COUNT: u32 = 3;
/// TCP_USER_TIMEOUT: written data left unacknowledged this long resets the
/// connection (covers a peer that vanished while we were sending).
pub const USER_TIMEOUT: Duration = Duration::from_secs(5);

/// Splits `"host:port"` (`"[v6]:port"` too) into host and port.
pub fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid address '{address}' (expected host:port)"))?;
    let port: u16 = port
        .trim()
        .parse()
        .map_err(|_| format!("invalid port in address '{address}'"))?;
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host.to_string(), port))
}

/// A link socket's raw descriptor, registered with the harbor thread's poller
/// for a while (reading while the link task is armed, writing while a write
/// waits for room). Whoever owns the descriptor drops the registration first.
pub struct LinkFd(pub RawFd);

impl AsRawFd for LinkFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// How a dial failed: the reason, and whether retrying is pointless (the
/// peer is not the harbor we were told about).
pub struct DialError {
    pub reason: String,
    pub fatal: bool,
}

impl DialError {
    fn retry(reason: String) -> DialError {
        DialError {
            reason,
            fatal: false,
        }
    }
}

async fn read_in_time<const N: usize>(s: &mut TcpStream) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    match timeout(HANDSHAKE_TIMEOUT, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => Ok(b),
        Ok(Err(e)) => Err(format!("handshake failed: {e}")),
        Err(_) => Err("handshake timed out".into()),
    }
}

/// Connects to harbor `id` at `addr` and does the handshake: our id byte
/// (`own`) out, theirs back, then the secret's exchange if there is one.
pub async fn dial(
    own: u8,
    id: u8,
    addr: &str,
    secret: Option<&Secret>,
) -> Result<TcpStream, DialError> {
    let mut s = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(DialError::retry(e.to_string())),
        Err(_) => return Err(DialError::retry("connect timed out".into())),
    };
    tune(&s);
    let hello = handshake_byte(own).map_err(|e| DialError::retry(e.to_string()))?;
    if let Err(e) = s.write_all(&hello).await {
        return Err(DialError::retry(format!("handshake write failed: {e}")));
    }
    let mut b = [0u8; 1];
    match timeout(HANDSHAKE_TIMEOUT, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(DialError::retry(format!("handshake failed: {e}"))),
        Err(_) => return Err(DialError::retry("handshake timed out".into())),
    }
    if check_handshake(b[0], Some(id)).is_err() {
        return Err(DialError {
            reason: format!("Invalid shakehand id ({}) from harbor {id} at {addr}", b[0]),
            fatal: true,
        });
    }
    if let Some(secret) = secret {
        let theirs: [u8; NONCE_LEN] = read_in_time(&mut s).await.map_err(DialError::retry)?;
        let mine = auth::nonce().map_err(DialError::retry)?;
        let proof = auth::link_proof(secret, LinkRole::Connector, own, id, &theirs, &mine);
        let mut msg = mine.to_vec();
        msg.extend_from_slice(&proof);
        if let Err(e) = s.write_all(&msg).await {
            return Err(DialError::retry(format!("handshake write failed: {e}")));
        }
        let answer: [u8; MAC_LEN] = read_in_time(&mut s).await.map_err(DialError::retry)?;
        if !auth::check_link_proof(secret, LinkRole::Acceptor, own, id, &theirs, &mine, &answer) {
            return Err(DialError {
                reason: format!(
                    "harbor {id} at {addr} does not know the cluster secret (wrong proof)"
                ),
                fatal: true,
            });
        }
    }
    Ok(s)
}

/// The accepting side, first step: the id byte a connection from `peer`
/// claims. The peer's id, or the line to log.
pub async fn read_hello(own: u8, s: &mut TcpStream, peer: &str) -> Result<u8, String> {
    tune(s);
    let mut b = [0u8; 1];
    match timeout(HANDSHAKE_TIMEOUT, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => {}
        _ => {
            return Err(format!(
                "Connection from {peer} closed before its handshake"
            ))
        }
    }
    match check_handshake(b[0], None) {
        Ok(id) if id != own => Ok(id),
        _ => Err(format!(
            "Refuse harbor link from {peer} (claims harbor {}): not another harbor's id",
            b[0]
        )),
    }
}

/// The accepting side, once the connection is admitted: our id byte
/// (`own`) back, then the secret's exchange if there is one. The reason
/// when it failed.
pub async fn answer_hello(
    own: u8,
    id: u8,
    s: &mut TcpStream,
    secret: Option<&Secret>,
) -> Result<(), String> {
    let hello = handshake_byte(own).map_err(|e| e.to_string())?;
    let Some(secret) = secret else {
        return s
            .write_all(&hello)
            .await
            .map_err(|e| format!("handshake write failed: {e}"));
    };
    let mine = auth::nonce()?;
    let mut msg = hello.to_vec();
    msg.extend_from_slice(&mine);
    s.write_all(&msg)
        .await
        .map_err(|e| format!("handshake write failed: {e}"))?;
    let answer: [u8; NONCE_LEN + MAC_LEN] = read_in_time(s)
        .await
        .map_err(|e| format!("no cluster secret proof ({e})"))?;
    let (theirs, proof) = answer.split_at(NONCE_LEN);
    let theirs: [u8; NONCE_LEN] = theirs.try_into().map_err(|_| "short nonce".to_string())?;
    if !auth::check_link_proof(secret, LinkRole::Connector, id, own, &mine, &theirs, proof) {
        return Err("wrong cluster secret proof".into());
    }
    let ours = auth::link_proof(secret, LinkRole::Acceptor, id, own, &mine, &theirs);
    s.write_all(&ours)
        .await
        .map_err(|e| format!("handshake write failed: {e}"))
}

/// Whether `peer` is one of the IPs of `announced` (`host:port`; a host
/// name is resolved). The IPs found, for the log, when it is not.
pub async fn peer_matches(peer: IpAddr, announced: &str) -> Result<(), String> {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let peer = canon(peer);
    let (host, port) = split_host_port(announced)?;
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match timeout(
            HANDSHAKE_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            Ok(Err(e)) => return Err(format!("can't resolve {host}: {e}")),
            Err(_) => return Err(format!("can't resolve {host}: timed out")),
        },
    };
    if ips.iter().any(|&ip| canon(ip) == peer) {
        return Ok(());
    }
    let shown: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    Err(format!("it announced {announced} ({})", shown.join(", ")))
}

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) {
    // SAFETY: `value` lives across the call and the length given is its size;
    // a bad descriptor or option makes setsockopt fail, not misbehave.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// Nodelay, keepalive with short intervals and a user timeout: a link whose
/// peer disappeared without closing is reset by the kernel within seconds.
pub fn tune(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            KEEPALIVE_IDLE.as_secs() as i32,
        );
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            KEEPALIVE_INTERVAL.as_secs() as i32,
        );
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            KEEPALIVE_COUNT as i32,
        );
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            USER_TIMEOUT.as_millis() as i32,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("127.0.0.1:2526").unwrap(),
            ("127.0.0.1".to_string(), 2526)
        );
        assert_eq!(
            split_host_port("[::1]:2526").unwrap(),
            ("::1".to_string(), 2526)
        );
        assert_eq!(
            split_host_port("localhost:1").unwrap(),
            ("localhost".to_string(), 1)
        );
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port("a:b").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn peer_address_check() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(peer_matches(lo, "127.0.0.1:2526").await.is_ok());
        assert!(
            peer_matches("::ffff:127.0.0.1".parse().unwrap(), "127.0.0.1:1")
                .await
                .is_ok()
        );
        assert!(peer_matches(lo, "localhost:2526").await.is_ok());
        let e = peer_matches(lo, "10.1.2.3:2526").await.unwrap_err();
        assert_eq!(e, "it announced 10.1.2.3:2526 (10.1.2.3)");
        assert!(peer_matches(lo, "bad").await.is_err());
    }
}
