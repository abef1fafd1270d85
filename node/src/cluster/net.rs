//! Socket details of the cluster links: listen/connect addresses, the TCP
//! options that make a dead peer visible (keepalive, user timeout), dialing
//! and the one-byte id handshake.

use skynet_proto::harbor::{check_handshake, handshake_byte};
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

/// Connects to harbor `id` at `addr` and does the handshake: our id byte
/// (`own`) out, theirs back.
pub async fn dial(own: u8, id: u8, addr: &str) -> Result<TcpStream, DialError> {
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
    Ok(s)
}

/// The accepting side of the handshake on a connection from `peer`: their
/// id byte in, ours (`own`) back. The peer's id, or the line to log.
pub async fn answer_handshake(
    own: u8,
    s: &mut TcpStream,
    peer: &str,
) -> Result<u8, Option<String>> {
    tune(s);
    let mut b = [0u8; 1];
    match timeout(HANDSHAKE_TIMEOUT, s.read_exact(&mut b)).await {
        Ok(Ok(_)) => {}
        _ => {
            return Err(Some(format!(
                "Connection from {peer} closed before its handshake"
            )))
        }
    }
    let id = match check_handshake(b[0], None) {
        Ok(id) if id != own => id,
        _ => return Err(Some(format!("Invalid harbor id {} from {peer}", b[0]))),
    };
    let hello = handshake_byte(own).map_err(|_| None)?;
    if s.write_all(&hello).await.is_err() {
        return Err(None);
    }
    Ok(id)
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
}
