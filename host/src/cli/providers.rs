//! `authhost providers`: the loaded components and configured instances, a component
//! file described, and a component put through the whole contract.

use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeOptions, SettingKind};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// The loaded components and the configured instances.
    List,
    /// Load one component file and describe it (or say why it cannot be used).
    Inspect { file: PathBuf },
    /// Run a component through the whole contract against a local stand-in upstream.
    Test {
        file: PathBuf,
        /// A TOML file of provider settings (`realm = "corp"`), overriding generated ones.
        #[arg(long = "settings")]
        settings: Option<PathBuf>,
    },
}

impl ProvidersCommand {
    pub async fn run(self, config: &Config) -> anyhow::Result<()> {
        match self {
            ProvidersCommand::List => list(config).await,
            ProvidersCommand::Inspect { file } => inspect(config, &file).await,
            ProvidersCommand::Test { file, settings } => {
                conformance(config, &file, settings.as_deref()).await
            }
        }
    }
}

fn runtime_for(config: &Config) -> anyhow::Result<Arc<Runtime>> {
    Runtime::new(crate::server::runtime_config(config))
}

async fn list(config: &Config) -> anyhow::Result<()> {
    let registry = Registry::load_all(
        runtime_for(config)?,
        config,
        config.runtime.providers_dir.as_deref(),
    )
    .await?;
    println!("COMPONENTS");
    println!(
        "{:<14} {:<9} {:<9} {:<64}  ORIGIN",
        "ID", "VERSION", "CONTRACT", "SHA256"
    );
    for c in registry.components.values() {
        println!(
            "{:<14} {:<9} {:<9} {:<64}  {}",
            c.info.id, c.info.version, c.contract, c.sha256, c.origin
        );
    }
    for refused in &registry.refused {
        println!("refused: {refused}");
    }
    println!("\nINSTANCES");
    if registry.instances.is_empty() {
        println!("(none configured)");
    }
    for i in registry.instances.values() {
        println!(
            "{:<14} component={} scopes={} allowed_hosts={}",
            i.id,
            i.component.info.id,
            i.scopes().join(" "),
            match i.allowed_hosts() {
                hosts if hosts.is_empty() => "(none: no network)".to_string(),
                hosts => hosts.join(","),
            }
        );
    }
    Ok(())
}

async fn conformance(config: &Config, file: &Path, settings: Option<&Path>) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let settings = match settings {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let block: crate::config::ProviderConfig =
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
            block
                .settings()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Default::default(),
    };
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: None,
        ..crate::server::runtime_config(config)
    })?;
    let report =
        crate::conformance::run(runtime, &file.display().to_string(), &bytes, settings).await?;
    report.print();
    match report.failed() {
        0 => Ok(()),
        n => anyhow::bail!("{n} conformance checks failed"),
    }
}

async fn inspect(config: &Config, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: None,
        ..crate::server::runtime_config(config)
    })?;
    let c = runtime.load(&file.display().to_string(), &bytes).await?;
    let info = &c.info;
    println!("file:        {}", file.display());
    println!("sha256:      {}", c.sha256);
    println!("size:        {} bytes", c.size);
    println!("id:          {}", info.id);
    println!("name:        {}", info.display_name);
    println!("version:     {}", info.version);
    println!("contract:    authhost:provider@{}", c.contract);
    println!("compiled in: {} ms", c.load_time.as_millis());
    println!("scopes:      {}", info.default_scopes.join(" "));
    println!(
        "supports:    pkce={} refresh={} revoke={}",
        info.supports_pkce, info.supports_refresh, info.supports_revoke
    );
    println!("settings:");
    for s in &info.settings {
        println!(
            "  {:<20} {:<8} {}{}  {}",
            s.name,
            match s.kind {
                SettingKind::Text => "text",
                SettingKind::Url => "url",
                SettingKind::List => "list",
                SettingKind::Boolean => "boolean",
            },
            if s.required { "required" } else { "optional" },
            s.default_value
                .as_ref()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default(),
            s.description
        );
    }
    Ok(())
}
