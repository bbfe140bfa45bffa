//! Short-lived values shared between calls of one provider instance (discovery
//! documents, JWKS): the host's cache on wasm, a per-thread map in native tests.

#[cfg(target_arch = "wasm32")]
pub use crate::bindings::authhost::provider::cache::{get, set};

#[cfg(not(target_arch = "wasm32"))]
pub use native::{get, set};

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        // One test runs on one thread, so tests do not see each other's entries.
        static ENTRIES: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    }

    pub fn get(key: &str) -> Option<String> {
        ENTRIES.with(|entries| entries.borrow().get(key).cloned())
    }

    /// Native tests keep entries until the thread ends; the TTL is not simulated.
    pub fn set(key: &str, value: &str, _ttl_seconds: u32) {
        ENTRIES.with(|entries| {
            entries
                .borrow_mut()
                .insert(key.to_string(), value.to_string());
        });
    }
}
