//! One task per slave connection.
//!
//! The task reads packets with [`MasterCodec`] and reports them to the hub,
//! and writes the packets the hub queues in its outbox. It ends when:
//!
//! * the peer closes the connection or the socket fails;
//! * the peer sends bytes that are not a valid packet (logged; the
//!   connection is dropped, nobody else is affected);
//! * the peer is not admitted (sent `W`) within the handshake timeout;
//! * writing one packet takes longer than the write timeout;
//! * the hub drops the outbox (a rejected handshake, a protocol violation,
//!   shutdown). Packets queued before that are still written.
//!
//! In every case but the last, the hub is told with [`Event::Closed`].

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use skynet_proto::master::{MasterCodec, MasterCodecError, MasterPacket};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, warn};

use crate::config::MasterConfig;
use crate::hub::Event;
use crate::registry::ConnId;

/// A slave that vanished without closing (host gone, network partition) must
/// not keep its harbor id: the master rarely writes to an idle slave, so TCP
/// keepalive probes (after 2 s idle, every 1 s, 3 of them) and a 5 s limit on
/// unacknowledged data make the kernel reset such a connection within seconds,
/// and the harbor id is free for the slave's next handshake.
fn detect_dead_peer(stream: &TcpStream) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(2))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    sock.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    sock.set_tcp_user_timeout(Some(Duration::from_secs(5)))?;
    Ok(())
}

/// Serves one accepted connection until it ends.
pub async fn serve(
    stream: TcpStream,
    conn: ConnId,
    peer: SocketAddr,
    events: mpsc::Sender<Event>,
    config: MasterConfig,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%conn, error = %e, "cannot set TCP_NODELAY");
    }
    if let Err(e) = detect_dead_peer(&stream) {
        debug!(%conn, error = %e, "cannot set TCP keepalive");
    }
    let (read_half, write_half) = stream.into_split();
    let mut reader = FramedRead::new(read_half, MasterCodec);
    let mut writer = FramedWrite::new(write_half, MasterCodec);
    let (outbox, mut inbox) = mpsc::channel(config.outbox_capacity.max(1));
    if events
        .send(Event::Opened { conn, peer, outbox })
        .await
        .is_err()
    {
        return;
    }

    let handshake_timer = tokio::time::sleep(config.handshake_timeout);
    tokio::pin!(handshake_timer);
    let mut greeted = false;
    let ended: Option<String> = loop {
        tokio::select! {
            queued = inbox.recv() => match queued {
                Some(packet) => {
                    // The handshake is over when the slave is admitted (`W`),
                    // not when it first speaks: a challenged slave that
                    // never answers is dropped too.
                    greeted |= matches!(packet, MasterPacket::Wait { .. });
                    match timeout(config.write_timeout, writer.send(packet)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break Some(format!("write failed: {e}")),
                    Err(_) => break Some("write timed out".to_owned()),
                }},
                None => break None,
            },
            received = reader.next() => match received {
                Some(Ok(packet)) => {
                    if events.send(Event::Packet { conn, packet }).await.is_err() {
                        break None;
                    }
                }
                Some(Err(MasterCodecError::Packet(e))) => {
                    warn!(%conn, %peer, error = %e, "malformed packet: disconnecting");
                    break Some(format!("malformed packet: {e}"));
                }
                Some(Err(e)) => break Some(e.to_string()),
                None => break Some("closed by the peer".to_owned()),
            },
            () = &mut handshake_timer, if !greeted => {
                warn!(%conn, %peer, timeout = ?config.handshake_timeout, "no handshake in time: disconnecting");
                break Some("no handshake in time".to_owned());
            }
        }
    };
    if let Some(reason) = ended {
        // The hub may already be gone at shutdown; nothing is left to tell.
        let _ = events.send(Event::Closed { conn, reason }).await;
    }
    if let Ok(Err(e)) = timeout(config.write_timeout, writer.get_mut().shutdown()).await {
        debug!(%conn, error = %e, "shutdown of the write side failed");
    }
}
