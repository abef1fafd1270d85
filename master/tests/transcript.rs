//! Replays the slave side of harbor_transcript.tsv against the master and
//! checks the master's side.
//!
//! The master answers as the reference did, with documented differences:
//! our `W` is the reference's followed by the set of harbors that will
//! connect (skynet's cslave reads only the count), then come a `P` for each
//! of them (a letter skynet's cslave ignores), and `N name handle` for every
//! name the master knows (the reference sends none; its slaves ask with `Q`
//! later, and `N` is always accepted). Those extra packets are checked to be
//! exactly the live harbors and the names registered so far, then the replay
//! goes on.

mod support;

use std::collections::BTreeSet;

use skynet_proto::master::MasterPacket;
use support::{hex, read_tsv, to_hex, Slave, TestMaster};

#[tokio::test]
async fn master_side_of_the_transcript_is_reproduced() {
    let rows: Vec<Vec<String>> = read_tsv("harbor_transcript.tsv")
        .into_iter()
        .filter(|r| r[2] == "slave1-master" || r[2] == "slave2-master")
        .collect();
    assert!(rows.len() >= 30, "only {} master rows", rows.len());

    let m = TestMaster::start().await;
    let mut master_handle = Some(m);
    let mut slaves: [Option<Slave>; 2] = [None, None];
    let mut registered: BTreeSet<(Vec<u8>, u32)> = BTreeSet::new();
    let mut replies = 0;

    for row in &rows {
        let (seq, link, direction, unit) = (&row[0], &row[2], &row[3], &row[4]);
        let idx = if link == "slave1-master" { 0 } else { 1 };
        let to_master = direction.ends_with("->master");
        match (unit.as_str(), to_master) {
            ("master_packet", true) => {
                let bytes = hex(&row[5]);
                if let Ok(MasterPacket::Register { name, handle }) =
                    MasterPacket::parse(&bytes[1..])
                {
                    registered.insert((name.as_bytes().to_vec(), handle.raw()));
                }
                if slaves[idx].is_none() {
                    let addr = master_handle.as_ref().expect("master running").addr;
                    slaves[idx] = Some(Slave::connect(addr).await);
                }
                slaves[idx].as_mut().unwrap().send_raw(&bytes).await;
            }
            ("master_packet", false) => {
                let slave = slaves[idx]
                    .as_mut()
                    .unwrap_or_else(|| panic!("seq {seq}: no slave"));
                let got = slave.recv_raw().await;
                let want = hex(&row[5]);
                if got.get(2) == Some(&b'W') {
                    // Skynet's bytes, then the harbor set.
                    assert_eq!(
                        to_hex(&got[1..want.len()]),
                        to_hex(&want[1..]),
                        "seq {seq}: {}",
                        row[6]
                    );
                    let Ok(MasterPacket::Wait {
                        count,
                        peers: Some(peers),
                        proof: None,
                    }) = MasterPacket::parse(&got[1..])
                    else {
                        panic!("seq {seq}: not our W: {}", to_hex(&got))
                    };
                    assert_eq!(peers.iter().count(), usize::from(count), "seq {seq}");
                    for id in peers.iter() {
                        match slave.recv().await {
                            MasterPacket::Peer { harbor, .. } if harbor == id => {}
                            other => panic!("seq {seq}: expected P {id} after W, got {other}"),
                        }
                    }
                } else {
                    assert_eq!(to_hex(&got), row[5], "seq {seq}: {}", row[6]);
                }
                replies += 1;
                if got.get(2) == Some(&b'W') {
                    // The extra N packets a newcomer gets after W.
                    let mut names = BTreeSet::new();
                    for _ in 0..registered.len() {
                        match slave.recv().await {
                            MasterPacket::Name { name, handle } => {
                                names.insert((name.as_bytes().to_vec(), handle.raw()));
                            }
                            other => panic!("seq {seq}: expected N after W, got {other}"),
                        }
                    }
                    assert_eq!(names, registered, "seq {seq}: names sent after W");
                }
            }
            ("eof", true) => {
                // The slave goes away.
                slaves[idx].as_mut().unwrap().shutdown().await;
            }
            ("eof", false) => {
                if link == "slave1-master" && master_handle.is_some() {
                    // At the end of the capture the master's node stopped.
                    master_handle.take().unwrap().stop().await;
                }
                slaves[idx].as_mut().unwrap().expect_eof().await;
            }
            other => panic!("seq {seq}: unexpected unit {other:?}"),
        }
    }
    eprintln!(
        "transcript: {} master-link rows replayed, {replies} master replies checked",
        rows.len()
    );
    assert!(replies >= 15, "only {replies} master replies checked");
    assert!(
        master_handle.is_none(),
        "the transcript ends with the master stopping"
    );
}
