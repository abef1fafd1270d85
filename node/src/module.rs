//! Service modules: the kinds of service the kernel can launch by name (skynet's C
//! service modules: `logger`, `snlua`, `harbor`, ...). The kernel knows only the
//! [`Service`] trait; snlua is one module among others.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// Defined beside [`crate::context::Context`], which holds an instance;
/// module authors find it here.
pub use crate::context::Service;

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
