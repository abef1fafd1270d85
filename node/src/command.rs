//! skynet's kernel text commands (`skynet.core.command`): TIMEOUT, REG, QUERY,
//! NAME, EXIT, KILL, LAUNCH, GETENV, SETENV, STARTTIME, ABORT, MONITOR, STAT,
//! LOGON/LOGOFF and SIGNAL, with skynet's result formats.

use crate::address::Address;
use crate::context::Context;
use crate::kernel::kernel;
use crate::log::MessageLog;
use crate::timer::hpc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs `cmd` for the service `ctx`. `None` is skynet's NULL result.
pub fn command(ctx: &Arc<Context>, cmd: &str, param: Option<&str>) -> Option<String> {
    let k = kernel();
    let p = param.unwrap_or("");
    match cmd {
        "TIMEOUT" => Some(timeout_session(ctx, parse_c_long(p) as i32).to_string()),
        "REG" => {
            if p.is_empty() {
                Some(format!(":{:x}", ctx.handle()))
            } else if let Some(name) = p.strip_prefix('.') {
                k.bind_name(name, ctx.handle()).then(|| name.to_string())
            } else {
                k.log(
                    ctx.handle(),
                    &format!("error: Can't register global name {p} in C"),
                );
                None
            }
        }
        "QUERY" => {
            let name = p.strip_prefix('.')?;
            k.find_name(name).map(|h| format!(":{h:x}"))
        }
        "NAME" => {
            let mut it = p.split_whitespace();
            let name = it.next()?;
            let handle = match Address::parse(it.next()?) {
                Address::Handle(h) if h != 0 => h,
                _ => return None,
            };
            if let Some(local) = name.strip_prefix('.') {
                k.bind_name(local, handle).then(|| local.to_string())
            } else {
                k.log(
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
        "GETENV" => k.getenv(p),
        "SETENV" => {
            if let Some((key, value)) = p.split_once(' ') {
                if !k.setenv(key, value) {
                    k.log(
                        ctx.handle(),
                        &format!("error: Can't setenv exist key : {key}"),
                    );
                }
            }
            None
        }
        "STARTTIME" => Some(k.starttime().to_string()),
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

/// `TIMEOUT ti`: a new session whose RESPONSE comes after `ti` centiseconds.
pub fn timeout_session(ctx: &Arc<Context>, ti: i32) -> i32 {
    let session = ctx.new_session();
    timeout(ctx, ti, session);
    session
}

/// Registers a timeout; `ti <= 0` answers at once through the queue.
pub fn timeout(ctx: &Arc<Context>, ti: i32, session: i32) {
    kernel().timeout(ctx, ti, session);
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
    match Address::parse(p) {
        Address::Global(_) => {
            kernel().log(ctx.handle(), &format!("Can't convert {p} to handle"));
            0
        }
        addr => kernel().resolve(addr),
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

/// `LOGON :addr`: opens the message log of a live service in `logpath`.
fn logon(ctx: &Arc<Context>, p: &str) {
    let k = kernel();
    let h = to_handle(ctx, p);
    let Some(target) = k.grab(h) else { return };
    let mut slot = target.logfile.lock();
    if slot.is_some() {
        return;
    }
    let Some(dir) = k.getenv("logpath") else {
        return;
    };
    let path = MessageLog::path(&dir, h);
    match MessageLog::open(&path, u64::from(k.starttime()) + k.now() / 100) {
        Ok(log) => {
            k.log(ctx.handle(), &format!("Open log file {path}"));
            *slot = Some(log);
        }
        Err(e) => k.log(ctx.handle(), &format!("Open log file {path} fail: {e}")),
    }
}

/// `LOGOFF :addr`: closes a service's message log.
fn logoff(ctx: &Arc<Context>, p: &str) {
    let k = kernel();
    let h = to_handle(ctx, p);
    let Some(target) = k.grab(h) else { return };
    let log = target.logfile.lock().take();
    if let Some(log) = log {
        k.log(ctx.handle(), &format!("Close log file :{h:08x}"));
        log.close(k.now());
    }
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
