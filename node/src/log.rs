//! Message logs (skynet's `skynet_log.c`): after `LOGON :addr`, every message
//! the service receives is written to `<logpath>/<handle as %08x>.log`, one
//! line each, until `LOGOFF :addr`. This module owns the file and its format;
//! the commands (which service, the `Open log file` lines) are in `command`,
//! and the worker writes each message as it dispatches it.

use crate::message::Message;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};

/// The open log of one service.
pub struct MessageLog {
    file: File,
}

impl MessageLog {
    /// The file that holds the log of `handle`.
    pub fn path(dir: &str, handle: u32) -> String {
        format!("{dir}/{handle:08x}.log")
    }

    /// Opens `path` for appending and writes the open line (`wall_secs`:
    /// the node's clock in seconds).
    pub fn open(path: &str, wall_secs: u64) -> io::Result<MessageLog> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "open time: {wall_secs}")?;
        Ok(MessageLog { file })
    }

    /// One line: `:source type session now payload-in-hex`, `now` in
    /// centiseconds since boot.
    pub fn write(&mut self, msg: &Message, now_cs: u64) {
        let mut line = format!(
            ":{:08x} {} {} {} ",
            msg.source, msg.ptype, msg.session, now_cs
        )
        .into_bytes();
        line.reserve(msg.data.len() * 2 + 1);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in &msg.data {
            line.push(HEX[usize::from(b >> 4)]);
            line.push(HEX[usize::from(b & 15)]);
        }
        line.push(b'\n');
        // A full disk loses log lines, not messages.
        let _ = self.file.write_all(&line);
    }

    /// Writes the close line; the file closes when `self` goes.
    pub fn close(mut self, now_cs: u64) {
        let _ = writeln!(self.file, "close time: {now_cs}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_lines_close() {
        let dir = std::env::temp_dir().join(format!("skynet-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.to_str().unwrap();
        let path = MessageLog::path(dir, 0x0100_000a);
        assert!(path.ends_with("/0100000a.log"), "{path}");
        let _ = std::fs::remove_file(&path);
        let mut log = MessageLog::open(&path, 1_700_000_000).unwrap();
        log.write(
            &Message::new(0x0100_0002, 7, 10, vec![0x00, 0xab, 0x7f]),
            123,
        );
        log.write(&Message::new(0, -3, 1, Vec::new()), 124);
        log.close(125);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "open time: 1700000000\n\
             :01000002 10 7 123 00ab7f\n\
             :00000000 1 -3 124 \n\
             close time: 125\n"
        );
        // A second LOGON appends.
        MessageLog::open(&path, 1).unwrap().close(2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("close time: 125\nopen time: 1\nclose time: 2\n"));
        std::fs::remove_file(&path).unwrap();
    }
}
