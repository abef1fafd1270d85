//! Socket details of the cluster links: listen/connect addresses and the TCP
//! options that make a dead peer visible (keepalive, user timeout).

use std::os::fd::AsRawFd;
use std::time::Duration;

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

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) {
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
