//! The `logger` service: writes TEXT messages as `[:%08x] text` lines to stdout, or
//! appends them to a file (config `logger`) with a `dd/mm/yy HH:MM:SS.cc ` prefix.
//! A SYSTEM message (sent on SIGHUP) reopens the file, for log rotation.

use crate::context::Context;
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use crate::module::Service;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;

#[derive(Default)]
pub struct Logger {
    path: Option<String>,
    file: Option<File>,
}

impl Logger {
    fn open(path: &str) -> std::io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }
}

/// `dd/mm/yy HH:MM:SS.cc` in local time for a skynet time (starttime + now cs).
pub fn time_prefix(starttime: u32, now_cs: u64) -> String {
    let secs = (starttime as u64 + now_cs / 100) as libc::time_t;
    // SAFETY: `libc::tm` is plain integers and one pointer (`tm_zone`), for
    // which all-zero bytes are valid values (a null pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r (the reentrant
    // form) reads `secs` and writes only `tm`. On failure `tm` stays zeroed.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:02}/{:02}/{:02} {:02}:{:02}:{:02}.{:02}",
        tm.tm_mday,
        tm.tm_mon + 1,
        tm.tm_year % 100,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now_cs % 100
    )
}

impl Service for Logger {
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String> {
        let args = args.trim();
        if !args.is_empty() {
            let f = Logger::open(args).map_err(|e| format!("can't open log file {args}: {e}"))?;
            self.file = Some(f);
            self.path = Some(args.to_string());
        }
        kernel().set_logger(ctx.handle());
        kernel().bind_name("logger", ctx.handle());
        Ok(())
    }

    fn dispatch(&mut self, _ctx: &Arc<Context>, msg: Message) {
        match msg.ptype {
            ptype::TEXT => {
                let mut line = Vec::with_capacity(msg.data.len() + 32);
                if self.file.is_some() {
                    let k = kernel();
                    line.extend_from_slice(time_prefix(k.starttime(), k.now()).as_bytes());
                    line.push(b' ');
                }
                line.extend_from_slice(format!("[:{:08x}] ", msg.source).as_bytes());
                line.extend_from_slice(&msg.data);
                line.push(b'\n');
                match self.file.as_mut() {
                    Some(f) => {
                        let _ = f.write_all(&line);
                        let _ = f.flush();
                    }
                    None => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&line);
                        let _ = out.flush();
                    }
                }
            }
            ptype::SYSTEM => {
                if let Some(path) = &self.path {
                    match Logger::open(path) {
                        Ok(f) => self.file = Some(f),
                        Err(e) => eprintln!("logger: can't reopen {path}: {e}"),
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::time_prefix;

    #[test]
    fn prefix_shape() {
        let p = time_prefix(0, 12345);
        // dd/mm/yy HH:MM:SS.cc
        assert_eq!(p.len(), 20, "{p}");
        assert!(p.ends_with(".45"));
        assert_eq!(&p[2..3], "/");
    }
}
