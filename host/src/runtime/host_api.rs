//! The imports a component may call: `http-client`, `cache`, `log`.

use super::bindings::authhost::provider::{cache, http_client, log, types};
use super::bindings::{HttpError, Request, Response};
use super::call::CallState;
use std::time::Duration;

/// Longest log line kept from a provider.
const MAX_LOG_LINE: usize = 2048;
/// Log lines kept from one call; later ones are dropped (one notice says so).
const MAX_LOG_LINES: u32 = 32;

impl types::Host for CallState {}

impl http_client::Host for CallState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        self.http_send(request).await
    }
}

impl cache::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.sandbox.cache.get(&key))
    }

    async fn set(&mut self, key: String, value: String, ttl_seconds: u32) -> wasmtime::Result<()> {
        let ttl = Duration::from_secs(ttl_seconds.into());
        self.sandbox.cache.set(key, value, ttl);
        Ok(())
    }
}

impl log::Host for CallState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        let provider = self.sandbox.name.as_str();
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(
                    provider,
                    "more than {MAX_LOG_LINES} log lines in one call; dropping the rest"
                );
            }
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let cut = (0..=MAX_LOG_LINE)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
        }
        match level {
            log::Level::Debug => tracing::debug!(provider, "{message}"),
            log::Level::Info => tracing::info!(provider, "{message}"),
            log::Level::Warn => tracing::warn!(provider, "{message}"),
            log::Level::Error => tracing::error!(provider, "{message}"),
        }
        Ok(())
    }
}
