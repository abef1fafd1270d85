//! The master's behaviour over real TCP connections, byte for byte where the
//! captured vectors pin it down.

mod support;

use std::time::Duration;

use skynet_master::MasterConfig;
use skynet_proto::master::MasterPacket;
use skynet_proto::seri::{self, Value};
use skynet_proto::Handle;
use support::{hex, n, name, read_tsv, to_hex, Slave, TestMaster};

/// The captured packet of master.tsv for `letter` and `args`.
fn captured(letter: &str, args: &str) -> Vec<u8> {
    read_tsv("master.tsv")
        .into_iter()
        .find(|r| r[1] == letter && r[2] == args && r[4].starts_with("captured"))
        .map(|r| hex(&r[3]))
        .unwrap_or_else(|| panic!("no captured {letter} {args} in master.tsv"))
}

#[tokio::test]
async fn handshakes_match_the_captured_bytes() {
    let m = TestMaster::start().await;
    // Our `W` is skynet's followed by the set of harbors that will connect
    // (which skynet's cslave does not read), then a `P` for each of them.
    let starts_as_captured = |ours: Vec<u8>, theirs: Vec<u8>| {
        assert_eq!(ours[1..theirs.len()], theirs[1..], "{ours:02x?}");
    };
    let mut s1 = Slave::connect(m.addr).await;
    s1.send_raw(&captured("H", "1, \"127.0.0.1:21526\"")).await;
    starts_as_captured(s1.recv_raw().await, captured("W", "0"));

    let mut s2 = Slave::connect(m.addr).await;
    s2.send_raw(&captured("H", "2, \"127.0.0.1:21527\"")).await;
    assert_eq!(s1.recv_raw().await, captured("C", "2, \"127.0.0.1:21527\""));
    starts_as_captured(s2.recv_raw().await, captured("W", "1"));
    assert_eq!(
        s2.recv().await,
        MasterPacket::Peer {
            harbor: 1,
            address: "127.0.0.1:21526".into()
        }
    );
    s1.expect_silence().await;
    s2.expect_silence().await;

    // A third slave: both older ones are told, the newcomer waits for 2.
    let (mut s3, count) = Slave::join(m.addr, 3).await;
    assert_eq!(count, 2);
    for s in [&mut s1, &mut s2] {
        assert_eq!(
            s.recv().await,
            MasterPacket::Connect {
                harbor: 3,
                address: "127.0.0.1:2528".into()
            }
        );
    }
    s3.expect_silence().await;
    m.stop().await;
}

#[tokio::test]
async fn a_handshake_split_into_single_bytes_works() {
    let m = TestMaster::start().await;
    let mut s = Slave::connect(m.addr).await;
    for b in captured("H", "1, \"127.0.0.1:21526\"") {
        s.send_raw(&[b]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(s.recv_wait().await, 0);
    m.stop().await;
}

#[tokio::test]
async fn register_is_broadcast_to_every_slave_including_the_sender() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    let (mut s2, _) = Slave::join(m.addr, 2).await;
    s1.recv().await; // C 2
    s1.send_raw(&captured("R", "\"DATACENTER\", 0x01000007"))
        .await;
    let notice = captured("N", "\"DATACENTER\", 0x01000007");
    assert_eq!(s1.recv_raw().await, notice);
    assert_eq!(s2.recv_raw().await, notice);
    // Several registrations in one write.
    let mut burst = captured("R", "\"Z\", 0x01000009");
    burst.extend(captured("R", "\"ABCDEFGHIJKLMNO\", 0x01000009"));
    s1.send_raw(&burst).await;
    for s in [&mut s1, &mut s2] {
        assert_eq!(s.recv_raw().await, captured("N", "\"Z\", 0x01000009"));
        assert_eq!(
            s.recv_raw().await,
            captured("N", "\"ABCDEFGHIJKLMNO\", 0x01000009")
        );
    }
    m.stop().await;
}

#[tokio::test]
async fn queries_are_answered_at_once_or_when_the_name_appears() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    let (mut s2, _) = Slave::join(m.addr, 2).await;
    s1.recv().await; // C 2

    // Unknown: no answer yet.
    s2.send_raw(&hex("070c51244c415445")).await; // Q "LATE"
    s2.expect_silence().await;
    // Registered later: the querier gets it (as does everyone).
    s1.send_raw(&hex("0c0c52244c4154452209000001")).await; // R "LATE" 0x01000009
    assert_eq!(to_hex(&s1.recv_raw().await), "0c0c4e244c4154452209000001");
    assert_eq!(to_hex(&s2.recv_raw().await), "0c0c4e244c4154452209000001");
    s2.expect_silence().await;

    // Known: answered at once, only to the querier.
    s2.send(&MasterPacket::Query { name: name("LATE") }).await;
    assert_eq!(s2.recv().await, n("LATE", 0x0100_0009));
    s1.expect_silence().await;
    m.stop().await;
}

#[tokio::test]
async fn a_newcomer_receives_every_known_name_after_w() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    s1.send(&MasterPacket::Register {
        name: name("SERVICE"),
        handle: Handle(0x0100_0008),
    })
    .await;
    s1.send(&MasterPacket::Register {
        name: name("DATACENTER"),
        handle: Handle(0x0100_0007),
    })
    .await;
    s1.recv().await;
    s1.recv().await;
    let (mut s2, count) = Slave::join(m.addr, 2).await;
    assert_eq!(count, 1);
    assert_eq!(s2.recv().await, n("DATACENTER", 0x0100_0007));
    assert_eq!(s2.recv().await, n("SERVICE", 0x0100_0008));
    s2.expect_silence().await;
    m.stop().await;
}

#[tokio::test]
async fn a_duplicate_name_has_one_winner_everywhere() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    let (mut s2, _) = Slave::join(m.addr, 2).await;
    s1.recv().await; // C 2
    s1.send(&MasterPacket::Register {
        name: name("FOO"),
        handle: Handle(0x0100_0010),
    })
    .await;
    assert_eq!(s1.recv().await, n("FOO", 0x0100_0010));
    assert_eq!(s2.recv().await, n("FOO", 0x0100_0010));
    // The loser hears the winner back, and so does everyone else.
    s2.send(&MasterPacket::Register {
        name: name("FOO"),
        handle: Handle(0x0200_0020),
    })
    .await;
    assert_eq!(s1.recv().await, n("FOO", 0x0100_0010));
    assert_eq!(s2.recv().await, n("FOO", 0x0100_0010));
    let (mut s3, _) = Slave::join(m.addr, 3).await;
    assert_eq!(s3.recv().await, n("FOO", 0x0100_0010));
    s3.send(&MasterPacket::Query { name: name("FOO") }).await;
    assert_eq!(s3.recv().await, n("FOO", 0x0100_0010));
    m.stop().await;
}

#[tokio::test]
async fn a_closed_slave_is_announced_down_to_the_others() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    let (s2, _) = Slave::join(m.addr, 2).await;
    let (mut s3, _) = Slave::join(m.addr, 3).await;
    s1.recv().await; // C 2
    s1.recv().await; // C 3
    drop(s2);
    assert_eq!(s1.recv_raw().await, captured("D", "2"));
    assert_eq!(s3.recv_raw().await, captured("D", "2"));
    s1.expect_silence().await;
    m.stop().await;
}

#[tokio::test]
async fn a_dead_harbor_id_can_rejoin_and_take_its_names_back() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    let (mut s2, _) = Slave::join(m.addr, 2).await;
    s1.recv().await; // C 2
    s2.send(&MasterPacket::Register {
        name: name("TWO"),
        handle: Handle(0x0200_0005),
    })
    .await;
    s1.recv().await;
    s2.recv().await;
    s2.shutdown().await;
    s2.expect_eof().await;
    assert_eq!(s1.recv().await, MasterPacket::Down { harbor: 2 });

    // Harbor 2 again, from a new process: treated as new.
    let mut again = Slave::connect(m.addr).await;
    again
        .send(&MasterPacket::Handshake {
            harbor: 2,
            address: "127.0.0.1:3527".into(),
        })
        .await;
    assert_eq!(
        s1.recv().await,
        MasterPacket::Connect {
            harbor: 2,
            address: "127.0.0.1:3527".into()
        }
    );
    assert_eq!(again.recv_wait().await, 1);
    // It is told the names the master kept, including its old one...
    assert_eq!(again.recv().await, n("TWO", 0x0200_0005));
    // ...and its re-registration with a new handle wins, since the old owner is gone.
    again
        .send(&MasterPacket::Register {
            name: name("TWO"),
            handle: Handle(0x0200_0009),
        })
        .await;
    assert_eq!(s1.recv().await, n("TWO", 0x0200_0009));
    assert_eq!(again.recv().await, n("TWO", 0x0200_0009));
    m.stop().await;
}

#[tokio::test]
async fn a_harbor_id_that_is_live_or_zero_is_rejected() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;

    let mut dup = Slave::connect(m.addr).await;
    dup.send(&MasterPacket::Handshake {
        harbor: 1,
        address: "127.0.0.1:9999".into(),
    })
    .await;
    dup.expect_eof().await;
    let mut zero = Slave::connect(m.addr).await;
    zero.send(&MasterPacket::Handshake {
        harbor: 0,
        address: "127.0.0.1:9998".into(),
    })
    .await;
    zero.expect_eof().await;
    // Out of range: not even a valid packet.
    let mut big = Slave::connect(m.addr).await;
    let body = seri::pack(&[
        Value::from("H"),
        Value::Integer(256),
        Value::from("127.0.0.1:1"),
    ])
    .unwrap();
    let mut raw = vec![body.len() as u8];
    raw.extend(body);
    big.send_raw(&raw).await;
    big.expect_eof().await;

    // The live slave noticed nothing and still works.
    s1.expect_silence().await;
    s1.send(&MasterPacket::Register {
        name: name("ONE"),
        handle: Handle(0x0100_0001),
    })
    .await;
    assert_eq!(s1.recv().await, n("ONE", 0x0100_0001));
    m.stop().await;
}

#[tokio::test]
async fn garbage_disconnects_only_its_sender() {
    let m = TestMaster::start().await;
    let (mut good, _) = Slave::join(m.addr, 1).await;

    // A live slave sends a length byte and invalid seri.
    let (mut bad, _) = Slave::join(m.addr, 2).await;
    assert_eq!(
        good.recv().await,
        MasterPacket::Connect {
            harbor: 2,
            address: "127.0.0.1:2527".into()
        }
    );
    bad.send_raw(&[3, 0x0c, 0x52, 0x07]).await;
    bad.expect_eof().await;
    assert_eq!(good.recv().await, MasterPacket::Down { harbor: 2 });

    // A live slave sends an unknown letter.
    let (mut odd, _) = Slave::join(m.addr, 3).await;
    assert_eq!(
        good.recv().await,
        MasterPacket::Connect {
            harbor: 3,
            address: "127.0.0.1:2528".into()
        }
    );
    odd.send_raw(&[2, 0x0c, b'X']).await;
    odd.expect_eof().await;
    assert_eq!(good.recv().await, MasterPacket::Down { harbor: 3 });

    // A live slave sends a master-to-slave packet.
    let (mut rude, _) = Slave::join(m.addr, 4).await;
    good.recv().await; // C 4
    rude.send(&MasterPacket::Down { harbor: 1 }).await;
    rude.expect_eof().await;
    assert_eq!(good.recv().await, MasterPacket::Down { harbor: 4 });

    // Garbage before any handshake: closed, nobody is told.
    let mut stranger = Slave::connect(m.addr).await;
    stranger.send_raw(&[5, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
    stranger.expect_eof().await;
    let mut early = Slave::connect(m.addr).await;
    early.send(&MasterPacket::Query { name: name("X") }).await;
    early.expect_eof().await;
    good.expect_silence().await;

    // The good slave still works.
    good.send(&MasterPacket::Register {
        name: name("OK"),
        handle: Handle(0x0100_0002),
    })
    .await;
    assert_eq!(good.recv().await, n("OK", 0x0100_0002));
    m.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_the_handshake_timeout() {
    let config = MasterConfig {
        handshake_timeout: Duration::from_millis(100),
        ..MasterConfig::default()
    };
    let m = TestMaster::start_with(config).await;
    let mut idle = Slave::connect(m.addr).await;
    idle.expect_eof().await;
    // So is one stuck in the middle of a packet (here: not even the protocol).
    let mut stuck = Slave::connect(m.addr).await;
    stuck.send_raw(b"GET / HTTP/1.0\r\n\r\n").await;
    stuck.expect_eof().await;
    // A slave that did shake hands is not affected by the timer.
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s1.send(&MasterPacket::Query { name: name("NOPE") }).await;
    s1.expect_silence().await;
    s1.send(&MasterPacket::Register {
        name: name("NOPE"),
        handle: Handle(0x0100_0003),
    })
    .await;
    assert_eq!(s1.recv().await, n("NOPE", 0x0100_0003));
    m.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_connection() {
    let m = TestMaster::start().await;
    let (mut s1, _) = Slave::join(m.addr, 1).await;
    let (mut s2, _) = Slave::join(m.addr, 2).await;
    s1.recv().await; // C 2
    m.stop().await;
    s1.expect_eof().await;
    s2.expect_eof().await;
}

#[tokio::test]
async fn with_a_cluster_secret_a_slave_must_prove_it() {
    use skynet_proto::auth::{self, MasterRole, Secret, NONCE_LEN};
    let secret = Secret::new("correct horse").unwrap();
    let m = TestMaster::start_with(MasterConfig {
        secret: Some(secret.clone()),
        ..MasterConfig::default()
    })
    .await;
    let hello = MasterPacket::Handshake {
        harbor: 1,
        address: "127.0.0.1:2526".into(),
    };
    let challenge = |p: MasterPacket| match p {
        MasterPacket::Challenge { nonce } => nonce,
        other => panic!("expected K, got {other}"),
    };
    // A C skynet slave (or ours without the secret) sends R after H: refused.
    let mut plain = Slave::connect(m.addr).await;
    plain.send(&hello).await;
    challenge(plain.recv().await);
    plain.send(&MasterPacket::Query { name: name("X") }).await;
    plain.expect_eof().await;
    // A wrong secret: refused.
    let mut wrong = Slave::connect(m.addr).await;
    wrong.send(&hello).await;
    let k = challenge(wrong.recv().await);
    let mine = [5; NONCE_LEN];
    let mac = auth::master_proof(
        &Secret::new("wrong").unwrap(),
        MasterRole::Slave,
        1,
        "127.0.0.1:2526",
        &k,
        &mine,
    );
    wrong.send(&MasterPacket::Answer { nonce: mine, mac }).await;
    wrong.expect_eof().await;
    // The right one: admitted, and the master proves it knows it too.
    let mut good = Slave::connect(m.addr).await;
    good.send(&hello).await;
    let k = challenge(good.recv().await);
    let mac = auth::master_proof(&secret, MasterRole::Slave, 1, "127.0.0.1:2526", &k, &mine);
    good.send(&MasterPacket::Answer { nonce: mine, mac }).await;
    match good.recv().await {
        MasterPacket::Wait {
            count: 0,
            proof: Some(p),
            ..
        } => assert!(auth::check_master_proof(
            &secret,
            MasterRole::Master,
            1,
            "127.0.0.1:2526",
            &k,
            &mine,
            &p
        )),
        other => panic!("expected W with a proof, got {other}"),
    }
    // A challenged slave that never answers is dropped like a silent one.
    let quick = TestMaster::start_with(MasterConfig {
        secret: Some(secret),
        handshake_timeout: Duration::from_millis(300),
        ..MasterConfig::default()
    })
    .await;
    let mut mute = Slave::connect(quick.addr).await;
    mute.send(&hello).await;
    challenge(mute.recv().await);
    mute.expect_eof().await;
    quick.stop().await;
    m.stop().await;
}
