//! Process tests of `skynet.stm` and `skynet.multicast` (with the
//! `multicastd` service) on one node: each starts a node whose start service
//! is `test/t_stm.lua` or `test/t_multicast.lua` and checks everything it
//! printed, in order (and `t_sharemap.lua`, sharemap over stm and sproto).
//! The two-harbor multicast test is in
//! integration-tests/tests/cluster.rs.

mod common;
mod live;

use common::{Node, Run};
use std::time::Duration;

fn run(start: &str) -> Run {
    live::run_to_done(&Node::new(start), Duration::from_secs(30))
}

#[test]
fn stm_readers_in_other_services_see_versions_and_memory_is_released() {
    let run = run("t_stm");
    run.said_exactly("t_stm",
        &[
            "first true v 1 | true v 1 | true v 1",
            "unchanged false | false | false",
            // v1 is what the readers read last, v3 the writer's; v2 is freed
            "held after updates objects 1 blocks 2",
            // a reader sees only the latest version, read in place
            "latest true v 3 100000 | true v 3 100000 | true v 3 100000",
            "held after reads objects 1 blocks 1",
            "copy taken twice false stm.newcopy: this stm object has no copy left to take (one stm.copy serves one stm.newcopy)",
            "forged pointer false stm.newcopy: invalid pointer (not an stm copy)",
            "not a pointer false stm.newcopy: need an stm copy (lightuserdata), got string",
            "bad version false stm.new: need a string or a message pointer and size, got table",
            "bad update false stm update: need a string or a message pointer and size, got number",
            "v4 true v 4 | true v 4 | true v 4",
            "held while the spare keeps v3 objects 1 blocks 2",
            "held after a reader exits objects 1 blocks 1",
            "writer gone false | false | false",
            "held by readers only objects 1 blocks 0",
            "held at the end objects 0 blocks 0",
            "done",
        ],
    );
}

#[test]
fn multicast_delivers_in_order_once_per_subscriber_and_frees_packages() {
    let run = run("t_multicast");
    run.said_exactly("t_multicast",
        &[
            // harbor 0: ids keep 0 in their low byte, the next is +256
            "channel ids 0 true 256 [Multicast:100]",
            "in order from the publisher 20 of 20",
            "held after delivery packages 0 blocks 0",
            "second publisher 20 of 20",
            "unsubscribed get nothing 5 of 5",
            "subscribed get it 15 of 15",
            "after a forged delivery 15 of 15",
            // the dying subscriber's queued deliveries gave their references back
            "held after the dying subscriber packages 0 blocks 0",
            "others unaffected 15 of 15",
            "held at the end of publishing packages 0 blocks 0",
            "deleted [Multicast:deleted]",
            "publish on the deleted object false skynet.multicast: the channel was deleted",
            "publish to a deleted channel false multicast: channel 100 does not exist (deleted?)",
            "subscribe to a deleted channel false multicast: channel 100 does not exist (deleted?)",
            "held after delete packages 0 blocks 0",
            "close of a non-package false multicast close: unknown package (already released, or not a multicast package)",
            "bind twice false Can't bind a multicast package more than once",
            "closed twice false multicast close: unknown package (already released, or not a multicast package)",
            "unpack size false Invalid multicast package size 4",
            "held at the end packages 0 blocks 0",
            "done",
        ],
    );
    // The forged delivery is an error in the subscriber, which goes on.
    run.expect("multicast unpack: unknown package");
    assert!(!run.has("panicked"), "{}", run.dump());
}

#[test]
fn sharemap_readers_see_commits_after_update() {
    let run = run("t_sharemap");
    run.said_exactly(
        "t_sharemap",
        &[
            "writer reads orc hp=10 pos=(1,2) tags=a alive=nil",
            "r1 init orc hp=10 pos=(1,2) tags=a alive=nil",
            "r1 before commit false orc hp=10 pos=(1,2) tags=a alive=nil",
            "r1 peek orc hp=10 pos=(1,2) tags=a alive=nil",
            "r1 update true orc hp=7 pos=(1,2) tags=a+b alive=nil",
            "r1 update again false orc hp=7 pos=(1,2) tags=a+b alive=nil",
            "r2 init orc hp=7 pos=(1,2) tags=a+b alive=nil",
            "r2 update true nil hp=0 pos=(5,6) tags=a+b alive=true",
            "r1 update true nil hp=0 pos=(5,6) tags=a+b alive=true",
            "r1 write false true",
            "commit of a bad field false true",
            "r1 after bad commit false nil hp=0 pos=(5,6) tags=a+b alive=true",
            "done",
        ],
    );
}
