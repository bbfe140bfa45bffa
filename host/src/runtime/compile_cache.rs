//! Compiled components on disk, so a restart does not recompile.
//!
//! The key is the component's sha256 plus a hash of the engine's compatibility
//! (wasmtime version, settings, CPU features). Files are written by this process only
//! (to a temporary name, then renamed), since loading a compiled artifact trusts it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir`, or none (always compile) when `dir` is `None`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path_for(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// The component, from the cache when it is there, else compiled (and cached).
    /// Returns whether it came from the cache.
    pub fn load(
        &self,
        engine: &Engine,
        sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        let Some(path) = self.path_for(sha256) else {
            return Ok((Component::new(engine, bytes)?, false));
        };
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, true)),
                Err(e) => tracing::warn!(path = %path.display(), error = %format!("{e:#}"),
                    "ignoring unusable compiled component; recompiling"),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomically(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
        }
        // SAFETY: the bytes were produced by this engine just now.
        Ok((deserialize_bytes(engine, &compiled)?, false))
    }
}

/// Read into memory rather than mmap: a cache file changed underneath a mapping
/// would crash the process (SIGBUS), and reading costs well under a millisecond.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: only files written by `write_atomically` under our engine's cache key are
    // read, and wasmtime checks the header against the engine before using them.
    unsafe { Component::deserialize(engine, &bytes) }
}

#[allow(unsafe_code)]
fn deserialize_bytes(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: produced by `precompile_component` of this same engine.
    unsafe { Component::deserialize(engine, bytes) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per writer, so concurrent loads of one component never share a temp file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
