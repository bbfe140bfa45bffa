//! The providers of one authhost: the components (bundled in the binary, plus every
//! `*.wasm` in the providers folder) and the configured instances that use them.

use crate::config::Config;
use crate::runtime::{InstanceSpec, LoadError, ProviderComponent, ProviderInstance, Runtime};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}
pub use bundled::BUNDLED;

/// Loaded components and configured instances.
pub struct Registry {
    pub runtime: Arc<Runtime>,
    /// By component id.
    pub components: BTreeMap<String, Arc<ProviderComponent>>,
    /// By instance id.
    pub instances: BTreeMap<String, Arc<ProviderInstance>>,
    /// Component files that were refused, with the reason (already logged).
    pub refused: Vec<LoadError>,
}

impl Registry {
    /// Load every component and build every configured instance. A broken component
    /// file is refused and logged; a configuration problem fails the whole load, with
    /// every problem listed under its `providers.<id>` key.
    pub async fn load(
        runtime: Arc<Runtime>,
        config: &Config,
        providers_dir: Option<&Path>,
    ) -> anyhow::Result<Registry> {
        let (registry, problems) = Registry::load_checked(runtime, config, providers_dir).await?;
        if !problems.is_empty() {
            anyhow::bail!(
                "invalid provider configuration:\n  {}",
                problems.join("\n  ")
            );
        }
        Ok(registry)
    }

    /// `load`, keeping the instances that work and listing the problems of the others
    /// (for `authhost check`, which reports everything at once). Components in the
    /// providers folder are all loaded; bundled ones only when an instance uses them
    /// (or with `all`), so a first start compiles what it needs, all at once.
    pub async fn load_checked(
        runtime: Arc<Runtime>,
        config: &Config,
        providers_dir: Option<&Path>,
    ) -> anyhow::Result<(Registry, Vec<String>)> {
        Registry::load_with(runtime, config, providers_dir, false).await
    }

    /// Every component, bundled ones included, whether used or not (`providers list`).
    pub async fn load_all(
        runtime: Arc<Runtime>,
        config: &Config,
        providers_dir: Option<&Path>,
    ) -> anyhow::Result<Registry> {
        let (registry, problems) =
            Registry::load_with(runtime, config, providers_dir, true).await?;
        if !problems.is_empty() {
            anyhow::bail!(
                "invalid provider configuration:\n  {}",
                problems.join("\n  ")
            );
        }
        Ok(registry)
    }

    async fn load_with(
        runtime: Arc<Runtime>,
        config: &Config,
        providers_dir: Option<&Path>,
        all: bool,
    ) -> anyhow::Result<(Registry, Vec<String>)> {
        let mut registry = Registry {
            runtime,
            components: BTreeMap::new(),
            instances: BTreeMap::new(),
            refused: Vec::new(),
        };
        let mut files = Vec::new();
        if let Some(dir) = providers_dir {
            for path in wasm_files(dir)? {
                match std::fs::read(&path) {
                    Ok(bytes) => files.push((path.display().to_string(), bytes)),
                    Err(e) => registry.refuse(LoadError::new(
                        path.display().to_string(),
                        format!("cannot be read: {e}"),
                    )),
                }
            }
        }
        // Bundled components are named `provider-<id>.wasm`.
        let wanted: Vec<&str> = config
            .providers
            .iter()
            .map(|(id, block)| block.component.as_deref().unwrap_or(id))
            .collect();
        let bundled: Vec<(String, &[u8])> = BUNDLED
            .iter()
            .filter(|(name, _)| {
                let id = name
                    .trim_start_matches("provider-")
                    .trim_end_matches(".wasm");
                all || wanted.contains(&id)
            })
            .map(|(name, bytes)| (format!("bundled:{name}"), *bytes))
            .collect();
        // Bundled first, so a file in the providers folder replaces one of them.
        let runtime = registry.runtime.clone();
        let loads = bundled
            .iter()
            .map(|(origin, bytes)| (origin.as_str(), *bytes))
            .chain(
                files
                    .iter()
                    .map(|(origin, bytes)| (origin.as_str(), bytes.as_slice())),
            )
            .map(|(origin, bytes)| runtime.load(origin, bytes));
        for (loaded, origin) in futures_util::future::join_all(loads).await.into_iter().zip(
            bundled
                .iter()
                .map(|b| &b.0)
                .chain(files.iter().map(|f| &f.0)),
        ) {
            registry.add(origin, loaded);
        }
        let base_url = config.server.base_url();
        let mut problems = Vec::new();
        for (id, block) in &config.providers {
            match registry.instance(id, block, &base_url) {
                Ok(instance) => {
                    registry.instances.insert(id.clone(), Arc::new(instance));
                }
                Err(list) => {
                    problems.extend(list.into_iter().map(|p| format!("providers.{id}: {p}")))
                }
            }
        }
        Ok((registry, problems))
    }

    fn add(&mut self, origin: &str, loaded: Result<Arc<ProviderComponent>, LoadError>) {
        let component = match loaded {
            Ok(component) => component,
            Err(e) => return self.refuse(e),
        };
        let id = component.info.id.clone();
        if let Some(previous) = self.components.get(&id) {
            if !previous.origin.starts_with("bundled:") {
                return self.refuse(LoadError::new(
                    origin,
                    format!("has the id `{id}`, already taken by {}", previous.origin),
                ));
            }
            tracing::info!(
                id,
                file = origin,
                "a provider file replaces the bundled one"
            );
        }
        tracing::info!(id, version = %component.info.version, origin,
            cached = component.from_cache, load_ms = component.load_time.as_millis() as u64,
            "provider component loaded");
        self.components.insert(id, component);
    }

    fn refuse(&mut self, error: LoadError) {
        tracing::error!("provider component refused: {error}");
        self.refused.push(error);
    }

    fn instance(
        &self,
        id: &str,
        block: &crate::config::ProviderConfig,
        base_url: &str,
    ) -> Result<ProviderInstance, Vec<String>> {
        let component_id = block.component.as_deref().unwrap_or(id);
        let Some(component) = self.components.get(component_id) else {
            let refused = self
                .refused
                .iter()
                .map(|e| format!("; refused: {e}"))
                .collect::<String>();
            return Err(vec![format!(
                "no component with id `{component_id}` (key `component`); loaded: {}{refused}",
                self.components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )]);
        };
        if let Some(pin) = &block.sha256
            && !pin.eq_ignore_ascii_case(&component.sha256)
        {
            return Err(vec![format!(
                "key `sha256`: {} has sha256 {}, not the pinned {pin}",
                component.origin, component.sha256
            )]);
        }
        let mut problems = Vec::new();
        let client_secret = block.client_secret().unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let settings = block.settings().unwrap_or_else(|e| {
            problems.push(e);
            BTreeMap::new()
        });
        let spec = InstanceSpec {
            id: id.to_string(),
            client_id: block.client_id.clone(),
            client_secret,
            redirect_uri: format!("{base_url}/oauth/callback/{id}"),
            scopes: block.scopes.clone(),
            settings,
            allowed_hosts: block.allowed_hosts.clone(),
            limits: block.limits(),
        };
        let instance = ProviderInstance::new(self.runtime.clone(), component.clone(), spec);
        match instance {
            Ok(instance) if problems.is_empty() => Ok(instance),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }
}

/// The `*.wasm` files in `dir`, sorted so load order (and duplicate handling) is stable.
fn wasm_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("providers_dir {}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
