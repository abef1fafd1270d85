//! The `cslave` service module: brings up the harbor (listen socket, master
//! connection, links) on the harbor thread and answers the `lua` calls that
//! `skynet.harbor` and `skynet.manager` make to `.cslave`.
//!
//! | command                 | reply                                                      |
//! |-------------------------|------------------------------------------------------------|
//! | `REGISTER(name, handle)`| none (a send): bind now, `R` to the master                  |
//! | `QUERYNAME(name)`       | `pack(handle)` when known (waits otherwise); `.x` = local   |
//! | `LINK(id)`              | empty, when harbor `id` goes down (at once if not linked)   |
//! | `CONNECT(id)`           | empty, when harbor `id` is linked (at once if it is)        |
//! | `LINKMASTER()`          | empty, when the master connection is lost (at once if down)  |
//! | `ELECTED()`             | `pack(bool)` after the first `W`: true when it was `W 0` (ours; bootstrap asks it when no `global_services` key is set) |

use super::master_link;
use super::net;
use super::router::{self, Cluster};
use super::state::Waiter;
use crate::context::Context;
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use crate::module::Service;
use skynet_proto::auth::Secret;
use skynet_proto::seri::{self, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static CLUSTER: OnceLock<Arc<Cluster>> = OnceLock::new();

#[derive(Default)]
pub struct Slave {
    cluster: Option<Arc<Cluster>>,
}

/// Starts the harbor thread: a single-threaded tokio runtime that runs the
/// listener, the master connection and every link.
fn start_runtime() -> Result<tokio::runtime::Handle, String> {
    crate::rt::io_thread("harbor").map_err(|e| format!("cslave: {e}"))
}

impl Service for Slave {
    fn init(&mut self, ctx: &Arc<Context>, _args: &str) -> Result<(), String> {
        let k = kernel();
        let own = k.harbor_id();
        if own == 0 {
            return Err("cslave: harbor 0 is single-node mode (cdummy)".into());
        }
        if CLUSTER.get().is_some() {
            return Err("cslave: already running".into());
        }
        let master = k
            .getenv("master")
            .ok_or("cslave: config 'master' (the master's host:port) is required")?;
        let address = k
            .getenv("address")
            .ok_or("cslave: config 'address' (this harbor's host:port) is required")?;
        let (host, port) = net::split_host_port(&address).map_err(|e| format!("cslave: {e}"))?;
        let listener = crate::socket::addr::listen_socket(&host, port, 128)
            .map_err(|e| format!("cslave: can't listen on {address}: {e}"))?;
        let (check_address, secret) = admission_config()?;
        let rt = start_runtime()?;
        let cluster = Cluster::new(
            own,
            ctx.handle(),
            address,
            master.clone(),
            rt,
            check_address,
            secret,
        );
        if CLUSTER.set(cluster.clone()).is_err() {
            return Err("cslave: already running".into());
        }
        k.log(ctx.handle(), &format!("slave connect to master {master}"));
        k.set_remote_router(Some(cluster.clone()));
        k.set_idle_poller(Some(cluster.clone()));
        cluster
            .rt
            .spawn(router::accept_loop(cluster.clone(), listener));
        cluster.rt.spawn(master_link::run(cluster.clone()));
        let sweeper = cluster.clone();
        cluster.rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                sweeper.expire_queues();
            }
        });
        self.cluster = Some(cluster);
        Ok(())
    }

    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        match msg.ptype {
            ptype::LUA => command(&cluster, ctx.handle(), msg),
            ptype::TEXT | ptype::RESPONSE | ptype::ERROR => {}
            t => {
                kernel().log(
                    ctx.handle(),
                    &format!("recv invalid message from {:x}, type = {t}", msg.source),
                );
                refuse(ctx.handle(), &msg);
            }
        }
    }
}

/// Config `harbor_check_address` (true unless "false") and `cluster_secret`
/// (none unless set; an empty one is an error).
pub fn admission_config() -> Result<(bool, Option<Secret>), String> {
    let k = kernel();
    let check = match k.getenv("harbor_check_address").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(format!(
                "cslave: harbor_check_address must be true or false, not '{other}'"
            ))
        }
    };
    let secret = match k.getenv("cluster_secret") {
        None => None,
        Some(s) => Some(
            Secret::new(s)
                .ok_or("cslave: cluster_secret is empty (leave it unset to turn it off)")?,
        ),
    };
    Ok((check, secret))
}

fn refuse(me: u32, msg: &Message) {
    if msg.session != 0 {
        let _ = kernel().send(me, me, msg.source, ptype::ERROR, msg.session, Vec::new());
    }
}

fn as_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Integer(i) => Some(*i),
        Value::Real(r) if r.fract() == 0.0 => Some(*r as i64),
        _ => None,
    }
}

fn as_str(v: Option<&Value>) -> Option<String> {
    v?.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn harbor_arg(v: Option<&Value>) -> Option<u8> {
    as_int(v).and_then(|i| u8::try_from(i).ok())
}

fn command(cluster: &Arc<Cluster>, me: u32, msg: Message) {
    let args = match seri::unpack(&msg.data) {
        Ok(a) => a,
        Err(e) => {
            kernel().log(
                me,
                &format!("cslave: bad lua message from :{:08x}: {e}", msg.source),
            );
            refuse(me, &msg);
            return;
        }
    };
    let cmd = as_str(args.first()).unwrap_or_default();
    let w = Waiter {
        source: msg.source,
        session: msg.session,
    };
    let bad = |what: &str| {
        kernel().log(me, &format!("cslave: {cmd}: {what}"));
        refuse(me, &msg);
    };
    match cmd.as_str() {
        "REGISTER" => {
            let (Some(name), Some(h)) = (as_str(args.get(1)), as_int(args.get(2))) else {
                return bad("expects (name, handle)");
            };
            cluster.register(&name, h as u32);
        }
        "QUERYNAME" => {
            let Some(name) = as_str(args.get(1)) else {
                return bad("expects (name)");
            };
            if name.starts_with('.') {
                let h = kernel().query_name(&name);
                let v = if h == 0 {
                    Value::Nil
                } else {
                    Value::Integer(i64::from(h))
                };
                let data = seri::pack(&[v]).unwrap_or_default();
                cluster.reply(w.source, w.session, data);
            } else {
                cluster.queryname(&name, w);
            }
        }
        "LINK" => match harbor_arg(args.get(1)) {
            Some(id) => cluster.link_waiter(id, w),
            None => bad("expects a harbor id 0..255"),
        },
        "CONNECT" => match harbor_arg(args.get(1)) {
            Some(id) => cluster.connect_waiter(id, w),
            None => bad("expects a harbor id 0..255"),
        },
        "LINKMASTER" => cluster.master_waiter(w),
        "ELECTED" => cluster.election_waiter(w),
        _ => bad("unknown command"),
    }
}
