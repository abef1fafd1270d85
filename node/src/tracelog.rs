//! Routes `tracing` events (from the embedded `skynet-master` library and the
//! I/O threads) into the skynet log, as lines from source 0, so an operator
//! sees a standalone node's master joins, leaves and name changes where the
//! rest of the node logs. `RUST_LOG` filters them (default: info).

use crate::kernel::kernel;
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// One formatted event; sent to the logger when dropped.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        while self.0.last() == Some(&b'\n') {
            self.0.pop();
        }
        let start = self.0.iter().take_while(|b| **b == b' ').count();
        if start < self.0.len() {
            kernel().log_bytes(0, self.0.split_off(start));
        }
    }
}

struct ToLogger;

impl<'a> MakeWriter<'a> for ToLogger {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// Installs the subscriber (once; later calls do nothing).
pub fn install() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ToLogger)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}
