//! Service modules: the kinds of service the kernel can launch by name (skynet's C
//! service modules: `logger`, `snlua`, `harbor`, ...). The kernel knows only this
//! trait; snlua is one module among others.

use crate::context::Context;
use crate::message::Message;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// One running service instance.
pub trait Service: Send {
    /// Runs synchronously inside `LAUNCH`, on the caller's thread. An error makes
    /// the launch fail (the kernel logs it and answers queued messages with ERROR).
    fn init(&mut self, ctx: &Arc<Context>, args: &str) -> Result<(), String>;

    /// Handles one message. Only one worker at a time calls this for a service.
    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message);
}

/// Creates a fresh, uninitialised instance of a module.
pub type ModuleFactory = Arc<dyn Fn() -> Box<dyn Service> + Send + Sync>;

#[derive(Default)]
pub struct ModuleRegistry {
    modules: RwLock<HashMap<String, ModuleFactory>>,
}

impl ModuleRegistry {
    pub fn register(&self, name: &str, factory: ModuleFactory) {
        self.modules.write().insert(name.to_string(), factory);
    }

    pub fn create(&self, name: &str) -> Option<Box<dyn Service>> {
        let f = self.modules.read().get(name).cloned()?;
        Some(f())
    }
}
