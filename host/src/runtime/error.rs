//! What can go wrong loading a component or calling into one.

use super::bindings::ProviderError;

/// A component file that cannot be used, with the reason in words.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct LoadError {
    /// The file (or `bundled:<name>`) the component came from.
    pub origin: String,
    pub reason: String,
}

impl LoadError {
    pub fn new(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        LoadError {
            origin: origin.into(),
            reason: reason.into(),
        }
    }
}

/// A failed provider call. Only the call fails: the host, the component and every other
/// provider keep working.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The provider answered with an error value.
    #[error("provider `{provider}` {operation}: {}", describe(error))]
    Provider {
        provider: String,
        operation: &'static str,
        error: ProviderError,
    },
    #[error("provider `{provider}` {operation}: exceeded its CPU time limit of {limit_ms} ms")]
    CpuLimit {
        provider: String,
        operation: &'static str,
        limit_ms: u64,
    },
    #[error("provider `{provider}` {operation}: exceeded its memory limit of {limit_mib} MiB")]
    MemoryLimit {
        provider: String,
        operation: &'static str,
        limit_mib: u64,
    },
    #[error("provider `{provider}` {operation}: did not finish within {limit_ms} ms")]
    Timeout {
        provider: String,
        operation: &'static str,
        limit_ms: u64,
    },
    #[error("provider `{provider}` {operation}: panicked: {message}")]
    Panicked {
        provider: String,
        operation: &'static str,
        message: String,
    },
    /// It answered something the host will not use (a URL off its allowed hosts,
    /// claims too large, control characters).
    #[error("provider `{provider}` {operation}: returned an invalid value: {detail}")]
    Invalid {
        provider: String,
        operation: &'static str,
        detail: String,
    },
    #[error("provider `{provider}` {operation}: failed: {detail}")]
    Crashed {
        provider: String,
        operation: &'static str,
        detail: String,
    },
}

impl CallError {
    /// The provider's own error value, when that is what failed the call.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            CallError::Provider { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A provider error in words (the generated `Display` is the `Debug` form).
pub fn describe(error: &ProviderError) -> String {
    match error {
        ProviderError::InvalidConfig(m) => format!("invalid configuration: {m}"),
        ProviderError::InvalidGrant(m) => format!("invalid grant: {m}"),
        ProviderError::AccessDenied(m) => format!("access denied: {m}"),
        ProviderError::UpstreamError(m) => format!("upstream error: {m}"),
        ProviderError::UpstreamUnavailable(m) => format!("upstream unavailable: {m}"),
        ProviderError::Unsupported => "not supported by this provider".into(),
    }
}
