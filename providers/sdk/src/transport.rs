//! Where the SDK's HTTP requests go: the host's `http-client` import in a component,
//! or a [`Transport`] a native test installs (see [`crate::testing::Upstream`]).

pub use crate::bindings::authhost::provider::http_client::{HttpError, Request, Response};

/// Something that answers HTTP requests in place of the network.
pub trait Transport {
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
}

/// Send through the host, the component's only way to the network.
#[cfg(target_arch = "wasm32")]
pub fn send(request: &Request) -> Result<Response, HttpError> {
    crate::bindings::authhost::provider::http_client::send(request)
}

/// Send through the transport installed on this thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn send(request: &Request) -> Result<Response, HttpError> {
    match native::current() {
        Some(transport) => transport.send(request),
        None => Err(HttpError::Denied(format!(
            "no transport for {} natively: install one (authhost_provider_sdk::testing::Upstream)",
            request.url
        ))),
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{Installed, install};

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::Transport;
    use std::cell::RefCell;
    use std::rc::Rc;

    thread_local! {
        static CURRENT: RefCell<Option<Rc<dyn Transport>>> = const { RefCell::new(None) };
    }

    pub(super) fn current() -> Option<Rc<dyn Transport>> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// Route this thread's requests to `transport` until the guard is dropped.
    pub fn install(transport: Rc<dyn Transport>) -> Installed {
        let previous = CURRENT.with(|current| current.replace(Some(transport)));
        Installed { previous }
    }

    /// Puts the previous transport back when dropped.
    pub struct Installed {
        previous: Option<Rc<dyn Transport>>,
    }

    impl Drop for Installed {
        fn drop(&mut self) {
            let previous = self.previous.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
}
