//! The node's environment: the string key/value store filled from the config file
//! and read by `skynet.getenv`. Keys are write-once, as in skynet.

use parking_lot::RwLock;
use std::collections::HashMap;

#[derive(Default)]
pub struct Env {
    map: RwLock<HashMap<String, String>>,
}

impl Env {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.map.read().get(key).cloned()
    }

    /// Sets a key that does not exist yet; false (and no change) if it does.
    pub fn set_new(&self, key: &str, value: &str) -> bool {
        let mut map = self.map.write();
        if map.contains_key(key) {
            return false;
        }
        map.insert(key.to_string(), value.to_string());
        true
    }

    /// Sets or replaces a key (config loading and defaults only).
    pub fn set(&self, key: &str, value: &str) {
        self.map.write().insert(key.to_string(), value.to_string());
    }

    /// The value of `key`, writing `default` back when it is absent (skynet's
    /// `optstring`).
    pub fn opt(&self, key: &str, default: &str) -> String {
        let mut map = self.map.write();
        map.entry(key.to_string())
            .or_insert_with(|| default.to_string())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_and_defaults_written_back() {
        let env = Env::new();
        assert!(env.set_new("a", "1"));
        assert!(!env.set_new("a", "2"));
        assert_eq!(env.get("a").as_deref(), Some("1"));
        assert_eq!(env.opt("thread", "8"), "8");
        assert_eq!(env.get("thread").as_deref(), Some("8"));
        assert_eq!(env.opt("a", "9"), "1");
    }
}
