//! The `authhost` command line.

use anyhow::Context;
use authhost::config::Config;
use authhost::registry::Registry;
use authhost::runtime::{Runtime, RuntimeConfig, SettingKind};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "authhost", version, about)]
struct Cli {
    /// The configuration file (TOML). Without one, the defaults apply.
    #[arg(long, short, global = true, env = "AUTHHOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (overrides `server.listen`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The embedded default: a development identity provider and a demo MCP server.
        #[arg(long)]
        dev: bool,
    },
    /// Access token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Provider components and instances.
    #[command(subcommand)]
    Providers(ProvidersCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a new signing key and make it the active one; older keys stay published
    /// in the JWKS so tokens they signed keep validating.
    Rotate,
}

#[derive(Subcommand)]
enum ProvidersCommand {
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

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the cause chain on one line, without a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTHHOST_LOG")
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve { listen, dev } => {
                if let Some(listen) = listen {
                    config.server.listen = listen;
                }
                authhost::server::serve(config, dev).await
            }
            Command::Keys(KeysCommand::Rotate) => {
                let store = authhost::store::Store::connect(&config.server.database_url()).await?;
                let sealer = authhost::crypto::Sealer::load_or_create(
                    &config.server.data_dir.join("encryption.key"),
                )?;
                let kid = authhost::oauth::jwt::rotate(&store, &sealer).await?;
                println!("new signing key {kid} is active");
                Ok(())
            }
            Command::Providers(ProvidersCommand::List) => list(&config).await,
            Command::Providers(ProvidersCommand::Inspect { file }) => inspect(&config, &file).await,
            Command::Providers(ProvidersCommand::Test { file, settings }) => {
                conformance(&config, &file, settings.as_deref()).await
            }
        }
    })
}

fn runtime_for(config: &Config) -> anyhow::Result<Arc<Runtime>> {
    Runtime::new(authhost::server::runtime_config(config))
}

async fn list(config: &Config) -> anyhow::Result<()> {
    let registry = Registry::load(
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
            let block: authhost::config::ProviderConfig =
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
            block
                .settings()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => Default::default(),
    };
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..authhost::server::runtime_config(config)
    })?;
    let report =
        authhost::conformance::run(runtime, &file.display().to_string(), &bytes, settings).await?;
    report.print();
    match report.failed() {
        0 => Ok(()),
        n => anyhow::bail!("{n} conformance checks failed"),
    }
}

async fn inspect(config: &Config, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..authhost::server::runtime_config(config)
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
