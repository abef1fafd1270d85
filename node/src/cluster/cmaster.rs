//! The `cmaster` service module (config `standalone`): runs the
//! `skynet-master` library inside the node, on its own thread. Launched by
//! bootstrap as `cmaster <listen address>` before `cslave`; the launch fails
//! when the address cannot be bound.

use crate::context::Context;
use crate::kernel::kernel;
use crate::message::{ptype, Message};
use crate::module::Service;
use skynet_master::{Master, MasterConfig};
use std::sync::Arc;

#[derive(Default)]
pub struct CMaster;

impl Service for CMaster {
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String> {
        let address = args.trim().to_string();
        if address.is_empty() {
            return Err("cmaster: a listen address is required".into());
        }
        // The embedded master asks its slaves for the node's own secret.
        let (_, secret) = super::slave::admission_config()?;
        let config = MasterConfig {
            secret,
            ..MasterConfig::default()
        };
        let rt = crate::rt::io_thread("cmaster").map_err(|e| format!("cmaster: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let shown = address.clone();
        rt.spawn(async move {
            match Master::bind(address.as_str(), config).await {
                Ok(master) => {
                    let local = master
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    let _ = tx.send(Ok(local));
                    if let Err(e) = master.run().await {
                        kernel().log(0, &format!("cmaster stopped: {e}"));
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
        match rx.recv() {
            Ok(Ok(local)) => {
                kernel().log(ctx.handle(), &format!("cmaster listen on {local}"));
                Ok(())
            }
            Ok(Err(e)) => Err(format!("cmaster: can't listen on {shown}: {e}")),
            Err(_) => Err("cmaster: the master thread did not start".into()),
        }
    }

    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        if msg.session != 0 && msg.ptype != ptype::RESPONSE && msg.ptype != ptype::ERROR {
            let me = ctx.handle();
            let _ = kernel().send(me, me, msg.source, ptype::ERROR, msg.session, Vec::new());
        }
    }
}
