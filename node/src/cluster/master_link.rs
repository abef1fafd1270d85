//! The connection to the master: `H id address`, then `W n`, then `C`/`N`/`D`
//! (and our master's `P`) from the master and `R`/`Q` to it. Lost or
//! unreachable, it is retried forever with a capped exponential backoff
//! (every attempt is logged); after each reconnection the slave registers
//! its names again.
//!
//! With `cluster_secret` set, the master must answer `H` with a challenge
//! (`K`), which we answer (`A`), and its `W` must carry its own proof; a
//! master that does not (a C skynet master, or ours without the secret) is
//! refused like an unreachable one, with the reason in the log.

use super::net;
use super::router::Cluster;
use futures::{SinkExt, StreamExt};
use skynet_proto::auth::{self, MasterRole};
use skynet_proto::master::{MasterCodec, MasterPacket};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc::unbounded_channel;
use tokio::time::timeout;
use tokio_util::codec::{FramedRead, FramedWrite};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for the master's `W` after our `H`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    (BACKOFF_MIN * factor).min(BACKOFF_MAX)
}

/// Keeps the node connected to its master for the life of the process.
pub async fn run(cluster: Arc<Cluster>) {
    let mut first = true;
    let mut failures = 0u32;
    loop {
        match session(&cluster, first).await {
            Ok(reason) => {
                first = false;
                failures = 0;
                cluster.log(&format!("Master disconnect ({reason})"));
                cluster.master_lost();
                tokio::time::sleep(BACKOFF_MIN).await;
                cluster.log(&format!("Reconnecting to master {}", cluster.master_addr));
            }
            Err(e) => {
                failures += 1;
                let wait = backoff(failures);
                cluster.log(&format!(
                    "Can't connect to master {} ({e}), attempt {failures}; retrying in {} ms",
                    cluster.master_addr,
                    wait.as_millis()
                ));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One master connection. Err: it never got past the handshake; Ok(reason):
/// it was established and then lost.
async fn session(cluster: &Arc<Cluster>, first: bool) -> Result<String, String> {
    let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(&cluster.master_addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("connect timed out".into()),
    };
    net::tune(&stream);
    let (rd, wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, MasterCodec);
    let mut writer = FramedWrite::new(wr, MasterCodec);
    let hello = MasterPacket::Handshake {
        harbor: cluster.own,
        address: cluster.address.clone(),
    };
    writer.send(hello).await.map_err(|e| e.to_string())?;
    let mut next = async || match timeout(WELCOME_TIMEOUT, reader.next()).await {
        Ok(Some(Ok(p))) => Ok(p),
        Ok(Some(Err(e))) => Err(format!("slave shakehand failed: {e}")),
        Ok(None) => Err("slave shakehand failed: closed by the master".to_string()),
        Err(_) => Err("slave shakehand failed: no answer".to_string()),
    };
    let mut welcome = next().await?;
    let mut exchange = None;
    if let Some(secret) = &cluster.secret {
        let MasterPacket::Challenge { nonce: theirs } = welcome else {
            return Err(format!(
                "the master did not ask for the cluster secret (got {welcome}); it is a C skynet master or has no secret: refusing it"
            ));
        };
        let mine = auth::nonce()?;
        let mac = auth::master_proof(
            secret,
            MasterRole::Slave,
            cluster.own,
            &cluster.address,
            &theirs,
            &mine,
        );
        writer
            .send(MasterPacket::Answer { nonce: mine, mac })
            .await
            .map_err(|e| e.to_string())?;
        exchange = Some((theirs, mine));
        welcome = next().await.map_err(|e| {
            format!("{e} (after our cluster secret proof: is the secret the same on both sides?)")
        })?;
    }
    let (n, peers) = match welcome {
        MasterPacket::Wait {
            count,
            peers,
            proof,
        } => {
            if let (Some(secret), Some((theirs, mine))) = (&cluster.secret, exchange) {
                let good = proof.is_some_and(|p| {
                    auth::check_master_proof(
                        secret,
                        MasterRole::Master,
                        cluster.own,
                        &cluster.address,
                        &theirs,
                        &mine,
                        &p,
                    )
                });
                if !good {
                    return Err("the master does not know the cluster secret (wrong proof)".into());
                }
            }
            (count as usize, peers)
        }
        MasterPacket::Challenge { .. } => {
            return Err("the master asks for a cluster secret: set cluster_secret".into())
        }
        other => return Err(format!("slave shakehand failed: got {other}")),
    };
    if first {
        cluster.log(&format!("Waiting for {n} harbors"));
    } else {
        cluster.log(&format!("Reconnected to master {}", cluster.master_addr));
    }
    let (tx, mut rx) = unbounded_channel();
    cluster.master_connected(tx, first, n, peers.as_ref());
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(p) => {
                    if let Err(e) = writer.send(p).await {
                        return Ok(format!("write failed: {e}"));
                    }
                }
                None => return Ok("closed".into()),
            },
            inp = reader.next() => match inp {
                Some(Ok(p)) => handle(cluster, p),
                Some(Err(e)) => return Ok(e.to_string()),
                None => return Ok("closed by the master".into()),
            },
        }
    }
}

fn handle(cluster: &Arc<Cluster>, p: MasterPacket) {
    match p {
        MasterPacket::Connect { harbor, address } => cluster.on_connect(harbor, address),
        MasterPacket::Name { name, handle } => {
            cluster.on_name(&String::from_utf8_lossy(name.as_bytes()), handle.raw())
        }
        MasterPacket::Down { harbor } => cluster.on_down(harbor),
        MasterPacket::Peer { harbor, address } => cluster.on_peer(harbor, address),
        other => cluster.log(&format!("Unexpected packet from master: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(5), BACKOFF_MAX);
        assert_eq!(backoff(50), BACKOFF_MAX);
    }
}
