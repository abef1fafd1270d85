//! A master on a loopback port, and a raw-bytes slave client for tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use skynet_master::{Master, MasterConfig, MasterError};
use skynet_proto::master::{encode_frame, MasterPacket};
use skynet_proto::{GlobalName, Handle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Upper bound for any single expected event.
pub const STEP: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(200);

pub struct TestMaster {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), MasterError>>,
}

impl TestMaster {
    pub async fn start() -> Self {
        Self::start_with(MasterConfig::default()).await
    }

    pub async fn start_with(config: MasterConfig) -> Self {
        let master = Master::bind("127.0.0.1:0", config).await.expect("bind");
        let addr = master.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(master.run_until(async {
            let _ = stopped.await;
        }));
        TestMaster {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = timeout(STEP, &mut self.task)
            .await
            .expect("master stops in time");
        result.expect("master task").expect("master result");
    }
}

pub fn name(s: &str) -> GlobalName {
    GlobalName::new(s).unwrap()
}

pub fn n(s: &str, handle: u32) -> MasterPacket {
    MasterPacket::Name {
        name: name(s),
        handle: Handle(handle),
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Slave {
    stream: TcpStream,
}

impl Slave {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = timeout(STEP, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        stream.set_nodelay(true).unwrap();
        Slave { stream }
    }

    /// Connects and completes the handshake; returns the slave and `W`'s
    /// count (the `P` packets after `W` are read and checked against it).
    pub async fn join(addr: SocketAddr, harbor: u8) -> (Self, u8) {
        let mut s = Slave::connect(addr).await;
        s.send(&MasterPacket::Handshake {
            harbor,
            address: format!("127.0.0.1:{}", 2525 + u16::from(harbor)),
        })
        .await;
        let count = s.recv_wait().await;
        (s, count)
    }

    /// Reads `W` and the `P` packets that follow it; returns the count.
    pub async fn recv_wait(&mut self) -> u8 {
        let (count, peers) = match self.recv().await {
            MasterPacket::Wait {
                count,
                peers: Some(peers),
                proof: None,
            } => (count, peers),
            other => panic!("expected W with a harbor set, got {other}"),
        };
        assert_eq!(
            peers.iter().count(),
            usize::from(count),
            "W {count} {peers}"
        );
        for id in peers.iter() {
            match self.recv().await {
                MasterPacket::Peer { harbor, address } => {
                    assert_eq!(harbor, id);
                    assert!(address.starts_with("127.0.0.1:"), "{address}");
                }
                other => panic!("expected P {id}, got {other}"),
            }
        }
        count
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(STEP, self.stream.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    pub async fn send(&mut self, packet: &MasterPacket) {
        self.send_raw(&encode_frame(packet).unwrap()).await;
    }

    /// One whole packet, raw (length byte included).
    pub async fn recv_raw(&mut self) -> Vec<u8> {
        timeout(STEP, async {
            let len = self
                .stream
                .read_u8()
                .await
                .expect("a packet, not the end of the stream");
            let mut body = vec![0; usize::from(len)];
            self.stream
                .read_exact(&mut body)
                .await
                .expect("packet body");
            let mut out = vec![len];
            out.extend(body);
            out
        })
        .await
        .expect("a packet in time")
    }

    pub async fn recv(&mut self) -> MasterPacket {
        let raw = self.recv_raw().await;
        MasterPacket::parse(&raw[1..]).expect("a valid packet from the master")
    }

    /// Asserts that nothing arrives for a while.
    pub async fn expect_silence(&mut self) {
        let mut byte = [0u8; 1];
        match timeout(QUIET, self.stream.read(&mut byte)).await {
            Err(_) => {}
            Ok(Ok(0)) => panic!("connection closed while silence was expected"),
            Ok(r) => panic!("unexpected data while silence was expected: {r:?} {byte:02x?}"),
        }
    }

    /// Asserts that the master closes the connection without sending more.
    pub async fn expect_eof(&mut self) {
        let mut byte = [0u8; 1];
        match timeout(STEP, self.stream.read(&mut byte)).await {
            Ok(Ok(0)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the end of the stream, got {other:?} {byte:02x?}"),
        }
    }

    /// Half-closes the connection (what a slave exiting looks like).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// The golden vector directory: `$SKYNET_VECTORS`, or `shared/vectors` next
/// to the repository.
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("SKYNET_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors")),
    }
}

/// The data rows of a vector file, split on tabs.
pub fn read_tsv(file: &str) -> Vec<Vec<String>> {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}
