//! Process tests of timeouts in bulk (`test/t_timer.lua`): thousands of
//! `skynet.timeout`s from one and from three services at once, fired by the
//! timer thread's wheel in batches, checked from Lua with `skynet.hpc()`.

mod common;
mod live;

use common::{Node, Run};
use std::time::Duration;

fn run(start: &str) -> Run {
    let node = Node::new(start);
    let cfg = live::write_config(&node.config_text(), &node.start);
    live::run_until(
        &[&cfg],
        &[],
        &format!("{start}: done"),
        Duration::from_secs(30),
    )
}

fn says(run: &Run, line: &str) {
    assert!(
        run.texts().iter().any(|t| t == line),
        "missing {line:?}:\n{}",
        run.dump()
    );
}

#[test]
fn bulk_timeouts_are_never_early_in_order_and_delivered_once() {
    let run = run("t_timer");
    says(
        &run,
        "t_timer: stream fired 3000 early 0 out of order 0 twice 0",
    );
    for i in 1..=3 {
        says(
            &run,
            &format!("t_timer: service {i} fired 2000 early 0 out of order 0 twice 0"),
        );
    }
    says(&run, "t_timer: string delay gives a session true");
    says(&run, "t_timer: fractional delay false true");
    says(&run, "t_timer: done");
}
