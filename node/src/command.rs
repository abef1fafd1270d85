//! skynet's kernel text commands (`skynet.core.command`): TIMEOUT, REG, QUERY,
//! NAME, EXIT, KILL, LAUNCH, GETENV, SETENV, STARTTIME, ABORT, MONITOR, STAT,
//! LOGON/LOGOFF and SIGNAL, with skynet's result formats.

use crate::context::Context;
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use crate::timer::hpc;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs `cmd` for the service `ctx`. `None` is skynet's NULL result.
pub fn command(ctx: &Arc<Context>, cmd: &str, param: Option<&str>) -> Option<String> {
    let k = kernel();
    let p = param.unwrap_or("");
    match cmd {
        "TIMEOUT" => {
            let ti = parse_c_long(p) as i32;
            let session = ctx.new_session();
            timeout(ctx, ti, session);
            Some(session.to_string())
        }
        "REG" => {
            if p.is_empty() {
                Some(format!(":{:x}", ctx.handle()))
            } else if let Some(name) = p.strip_prefix('.') {
                k.handles
                    .bind_name(name, ctx.handle())
                    .then(|| name.to_string())
            } else {
                k.error(
                    ctx.handle(),
                    &format!("error: Can't register global name {p} in C"),
                );
                None
            }
        }
        "QUERY" => {
            let name = p.strip_prefix('.')?;
            k.handles.find_name(name).map(|h| format!(":{h:x}"))
        }
        "NAME" => {
            let mut it = p.split_whitespace();
            let name = it.next()?;
            let addr = it.next()?.strip_prefix(':')?;
            let handle = u32::from_str_radix(addr, 16).ok().filter(|h| *h != 0)?;
            if let Some(local) = name.strip_prefix('.') {
                k.handles
                    .bind_name(local, handle)
                    .then(|| local.to_string())
            } else {
                k.error(
                    ctx.handle(),
                    &format!("error: Can't set global name {name} in C"),
                );
                None
            }
        }
        "EXIT" => {
            k.exit_service(ctx.handle(), ctx.handle());
            None
        }
        "KILL" => {
            let h = to_handle(ctx, p);
            if h != 0 {
                k.exit_service(ctx.handle(), h);
            }
            None
        }
        "LAUNCH" => {
            let p = p.trim_start_matches([' ', '\t', '\r', '\n']);
            let (module, rest) = match p.find([' ', '\t', '\r', '\n']) {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, ""),
            };
            let args = rest.split(['\r', '\n']).next().unwrap_or("");
            k.launch(module, args).map(|h| format!(":{h:08X}"))
        }
        "GETENV" => k.env.get(p),
        "SETENV" => {
            if let Some((key, value)) = p.split_once(' ') {
                if !k.env.set_new(key, value) {
                    k.error(
                        ctx.handle(),
                        &format!("error: Can't setenv exist key : {key}"),
                    );
                }
            }
            None
        }
        "STARTTIME" => Some(k.timer.starttime().to_string()),
        "ABORT" => {
            k.abort();
            None
        }
        "MONITOR" => {
            if p.is_empty() {
                let m = k.monitor_exit();
                (m != 0).then(|| format!(":{m:x}"))
            } else {
                k.set_monitor_exit(to_handle(ctx, p));
                None
            }
        }
        "STAT" => Some(stat(ctx, p)),
        "LOGON" => {
            logon(ctx, p);
            None
        }
        "LOGOFF" => {
            logoff(ctx, p);
            None
        }
        "SIGNAL" => {
            let (target, sig) = match p.split_once(' ') {
                Some((t, s)) => (t, parse_c_long(s.trim()) as i32),
                None => (p, 0),
            };
            let h = to_handle(ctx, target);
            if let Some(c) = k.grab(h) {
                c.signal(sig);
            }
            None
        }
        _ => None,
    }
}

/// Registers a timeout; `ti <= 0` answers at once through the queue.
pub fn timeout(ctx: &Arc<Context>, ti: i32, session: i32) {
    let k = kernel();
    if !k.timer.add(ctx.handle(), session, ti) {
        k.push_ctx(ctx, Message::new(0, session, ptype::RESPONSE, Vec::new()));
    }
}

fn stat(ctx: &Arc<Context>, what: &str) -> String {
    let k = kernel();
    match what {
        "mqlen" => ctx.queue_len().to_string(),
        "endless" => if ctx.take_endless() { "1" } else { "0" }.to_string(),
        "cpu" => format!(
            "{:.6}",
            ctx.cpu_cost_ns.load(Ordering::Relaxed) as f64 / 1e9
        ),
        "time" => {
            let start = ctx.cpu_start_ns.load(Ordering::Relaxed);
            if k.profile() && start != 0 {
                format!("{:.6}", hpc().saturating_sub(start) as f64 / 1e9)
            } else {
                "0".to_string()
            }
        }
        "message" => ctx.message_count.load(Ordering::Relaxed).to_string(),
        _ => String::new(),
    }
}

/// `":hex"` or `".name"` to a handle; anything else is logged and gives 0.
fn to_handle(ctx: &Context, p: &str) -> u32 {
    if let Some(hex) = p.strip_prefix(':') {
        u32::from_str_radix(hex.trim(), 16).unwrap_or(0)
    } else if let Some(name) = p.strip_prefix('.') {
        kernel().handles.find_name(name).unwrap_or(0)
    } else {
        kernel().error(ctx.handle(), &format!("Can't convert {p} to handle"));
        0
    }
}

/// C `strtol(s, NULL, 0)`-like: leading whitespace, sign, 0x/0 prefixes, stops at
/// the first bad character, 0 when nothing parses.
pub fn parse_c_long(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else {
        (10, s)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let v = i64::from_str_radix(&digits[..end], radix).unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

fn logon(ctx: &Arc<Context>, p: &str) {
    let k = kernel();
    let h = to_handle(ctx, p);
    let Some(target) = k.grab(h) else { return };
    let mut slot = target.logfile.lock();
    if slot.is_some() {
        return;
    }
    let Some(dir) = k.env.get("logpath") else {
        return;
    };
    let path = format!("{dir}/{h:08x}.log");
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(mut f) => {
            k.error(ctx.handle(), &format!("Open log file {path}"));
            let _ = writeln!(
                f,
                "open time: {}",
                k.timer.starttime() as u64 + k.timer.now() / 100
            );
            *slot = Some(f);
        }
        Err(e) => k.error(ctx.handle(), &format!("Open log file {path} fail: {e}")),
    }
}

fn logoff(ctx: &Arc<Context>, p: &str) {
    let k = kernel();
    let h = to_handle(ctx, p);
    let Some(target) = k.grab(h) else { return };
    let file = target.logfile.lock().take();
    if let Some(mut f) = file {
        k.error(ctx.handle(), &format!("Close log file :{h:08x}"));
        let _ = writeln!(f, "close time: {}", k.timer.now());
    }
}

/// One line of a `LOGON` message log: `:source type session now hexpayload`.
pub(crate) fn log_message(f: &mut File, msg: &Message) {
    let mut line = format!(
        ":{:08x} {} {} {} ",
        msg.source,
        msg.ptype,
        msg.session,
        kernel().timer.now()
    );
    for b in &msg.data {
        line.push_str(&format!("{b:02x}"));
    }
    line.push('\n');
    let _ = f.write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::parse_c_long;

    #[test]
    fn c_long_parsing() {
        assert_eq!(parse_c_long("100"), 100);
        assert_eq!(parse_c_long(" -5x"), -5);
        assert_eq!(parse_c_long("0x1f"), 31);
        assert_eq!(parse_c_long("abc"), 0);
        assert_eq!(parse_c_long(""), 0);
    }
}
