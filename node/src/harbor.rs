//! The single-node `harbor` module (`harbor 0 <slave>`, launched by cdummy): it
//! owns the global-name table of a node without a cluster and is the kernel's
//! [`RemoteRouter`] there.
//!
//! Global names are bound by `N name` HARBOR texts whose source is the named
//! handle. A message to a name not bound yet waits in a per-name queue (and the
//! slave is asked with a TEXT `Q name`, as skynet's harbor does) until the name is
//! bound; `skynet.term` is the escape hatch for a caller. Every other harbor is
//! down in single-node mode, so a message to a remote handle is answered with
//! ERROR at once.

use crate::context::Context;
use crate::kernel::{kernel, RemoteRouter};
use crate::message::{ptype, Message};
use crate::module::Service;
use parking_lot::Mutex;
use skynet_proto::{global_name, Handle};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
struct Names {
    bound: HashMap<String, u32>,
    waiting: HashMap<String, Vec<Message>>,
}

#[derive(Default)]
pub struct HarborState {
    slave: u32,
    names: Mutex<Names>,
}

impl HarborState {
    /// Binds `name` and releases the messages that waited for it.
    pub fn bind(&self, name: &str, handle: u32) {
        let waiting = {
            let mut n = self.names.lock();
            n.bound.insert(name.to_string(), handle);
            n.waiting.remove(name).unwrap_or_default()
        };
        for m in waiting {
            self.send_handle(handle, m);
        }
    }
}

impl RemoteRouter for HarborState {
    fn send_handle(&self, dest: u32, msg: Message) {
        let k = kernel();
        if !k.is_remote(dest) {
            if let Err(m) = k.push(dest, msg) {
                k.drop_message(dest, m);
            }
            return;
        }
        k.log(
            0,
            &format!(
                "Drop message to harbor {} from {:x} to {:x} (session = {}, msgsz = {})",
                Handle(dest).harbor(),
                msg.source,
                dest,
                msg.session,
                msg.data.len()
            ),
        );
        k.drop_message(dest, msg);
    }

    fn send_name(&self, name: &str, msg: Message) {
        let mut names = self.names.lock();
        if let Some(&h) = names.bound.get(name) {
            drop(names);
            self.send_handle(h, msg);
            return;
        }
        names.waiting.entry(name.to_string()).or_default().push(msg);
        drop(names);
        if self.slave != 0 {
            let q = Message::new(0, 0, ptype::TEXT, format!("Q {name}").into_bytes());
            let _ = kernel().push(self.slave, q);
        }
    }
}

/// The `harbor` service module.
#[derive(Default)]
pub struct LocalHarbor {
    state: Option<Arc<HarborState>>,
}

impl Service for LocalHarbor {
    fn init(&mut self, _ctx: &Arc<Context>, args: &str) -> Result<(), String> {
        let mut it = args.split_whitespace();
        let id: u32 = it
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("harbor: bad arguments '{args}'"))?;
        let slave: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if id != kernel().harbor_id() as u32 {
            return Err(format!(
                "harbor: id {id} is not this node's ({})",
                kernel().harbor_id()
            ));
        }
        let state = Arc::new(HarborState {
            slave,
            names: Mutex::new(Names::default()),
        });
        kernel().set_remote_router(Some(state.clone()));
        self.state = Some(state);
        Ok(())
    }

    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        let Some(state) = &self.state else { return };
        match msg.ptype {
            ptype::HARBOR => {
                let text = String::from_utf8_lossy(&msg.data);
                if let Some(name) = text.strip_prefix("N ") {
                    let name = name.trim();
                    if name.is_empty() || name.len() > global_name::MAX_LEN {
                        kernel().log(ctx.handle(), &format!("Invalid global name {name}"));
                        return;
                    }
                    state.bind(name, msg.source);
                } else {
                    kernel().log(ctx.handle(), &format!("Unknown command {text}"));
                }
            }
            t => {
                kernel().log(
                    ctx.handle(),
                    &format!("recv invalid message from {:x}, type = {}", msg.source, t),
                );
                if msg.session != 0 {
                    let _ = kernel().send(
                        ctx.handle(),
                        ctx.handle(),
                        msg.source,
                        ptype::ERROR,
                        msg.session,
                        Vec::new(),
                    );
                }
            }
        }
    }
}
