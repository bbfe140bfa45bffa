//! The `authhost` command line.

use anyhow::Context;
use authhost::admin;
use authhost::config::{Config, LogFormat};
use authhost::registry::Registry;
use authhost::runtime::{Runtime, RuntimeConfig, SettingKind};
use authhost::store::Store;
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
    /// Validate the configuration and report every problem with its key.
    Check,
    /// OAuth clients registered by the operator (besides `[[clients]]` and DCR).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// API keys for service accounts (MCP servers with `api_keys = true`).
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client; prints its id (and secret, once).
    Add {
        #[arg(long)]
        name: String,
        /// Where the client receives codes (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A client with a secret (a server-side app), not a public one.
        #[arg(long)]
        confidential: bool,
    },
    /// Clients from the config file and the database.
    List,
    /// Remove a registered client and revoke every grant it holds.
    Remove { client_id: String },
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// Who the key is for, e.g. `ci-bot`.
        #[arg(long)]
        name: String,
        /// The `mcp_servers` name it is valid for; every server when omitted.
        #[arg(long, default_value = "*")]
        server: String,
        /// The subject MCP servers see; `api-key:<name>` by default.
        #[arg(long)]
        subject: Option<String>,
        /// Groups policies see (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Scopes the key holds (repeat); `mcp` by default.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Expire after this many days.
        #[arg(long = "expires-in-days")]
        expires_in_days: Option<u64>,
    },
    /// Every key, without the keys themselves.
    List,
    /// Revoke a key by its id.
    Revoke { id: String },
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

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHHOST_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let loaded = Config::load(cli.config.as_deref());
    if let (Command::Check, Err(errors)) = (&cli.command, &loaded) {
        // Nothing more can be checked without a parsed file.
        for problem in &errors.0 {
            println!("problem: {problem}");
        }
        anyhow::bail!("{} problem(s) in the configuration", errors.0.len());
    }
    let mut config = loaded?;
    // Commands print their results; only the server logs what it does.
    let quiet = !matches!(cli.command, Command::Serve { .. });
    init_logging(
        config.logging.format,
        if quiet {
            "warn"
        } else {
            "info,wasmtime=warn,cranelift=warn"
        },
    );
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
                let store = store(&config).await?;
                let sealer = authhost::crypto::Sealer::load_or_create(
                    &config.server.data_dir.join("encryption.key"),
                )?;
                let kid = authhost::oauth::jwt::rotate(&store, &sealer).await?;
                println!("new signing key {kid} is active");
                Ok(())
            }
            Command::Check => {
                let problems = authhost::check::check(&config).await;
                for problem in &problems {
                    println!("problem: {problem}");
                }
                match problems.len() {
                    0 => {
                        println!(
                            "configuration OK: {} provider(s), {} MCP server(s)",
                            config.providers.len(),
                            config.mcp_servers.len()
                        );
                        Ok(())
                    }
                    n => anyhow::bail!("{n} problem(s) in the configuration"),
                }
            }
            Command::Clients(command) => clients(&config, command).await,
            Command::ApiKeys(command) => api_keys(&config, command).await,
            Command::Providers(ProvidersCommand::List) => list(&config).await,
            Command::Providers(ProvidersCommand::Inspect { file }) => inspect(&config, &file).await,
            Command::Providers(ProvidersCommand::Test { file, settings }) => {
                conformance(&config, &file, settings.as_deref()).await
            }
        }
    })
}

async fn store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.server.database_url()).await
}

async fn clients(config: &Config, command: ClientsCommand) -> anyhow::Result<()> {
    let store = store(config).await?;
    match command {
        ClientsCommand::Add {
            name,
            redirect_uris,
            confidential,
        } => {
            let client = admin::add_client(&store, &name, &redirect_uris, confidential).await?;
            println!("client_id:     {}", client.client_id);
            if let Some(secret) = client.secret {
                println!("client_secret: {secret}");
                println!("(the secret is shown only now; authhost keeps a hash)");
            }
        }
        ClientsCommand::List => {
            println!(
                "{:<48} {:<10} {:<24} REDIRECT URIS",
                "CLIENT ID", "ORIGIN", "NAME"
            );
            for c in &config.clients {
                println!(
                    "{:<48} {:<10} {:<24} {}",
                    c.client_id,
                    "config",
                    c.name.as_deref().unwrap_or(""),
                    c.redirect_uris.join(" ")
                );
            }
            for c in store.clients().await? {
                let uris: Vec<String> = serde_json::from_str(&c.redirect_uris).unwrap_or_default();
                println!(
                    "{:<48} {:<10} {:<24} {}",
                    c.client_id,
                    "database",
                    c.name,
                    uris.join(" ")
                );
            }
        }
        ClientsCommand::Remove { client_id } => {
            if config.clients.iter().any(|c| c.client_id == client_id) {
                anyhow::bail!(
                    "`{client_id}` is defined in the config file ([[clients]]); remove it there"
                );
            }
            if !store
                .remove_client(&client_id, authhost::clock::now())
                .await?
            {
                anyhow::bail!("no registered client `{client_id}`");
            }
            println!("removed {client_id}; its grants are revoked");
        }
    }
    Ok(())
}

async fn api_keys(config: &Config, command: ApiKeysCommand) -> anyhow::Result<()> {
    let store = store(config).await?;
    match command {
        ApiKeysCommand::Create {
            name,
            server,
            subject,
            groups,
            scopes,
            expires_in_days,
        } => {
            if server != "*" && !config.mcp_servers.contains_key(&server) {
                anyhow::bail!("--server: no `[mcp_servers.{server}]` in the configuration");
            }
            let scopes = if scopes.is_empty() {
                vec!["mcp".to_string()]
            } else {
                scopes
            };
            let spec = admin::ApiKeySpec {
                name: &name,
                server: &server,
                subject: subject.as_deref(),
                groups: &groups,
                scopes: &scopes,
                expires_in_days,
            };
            let (id, key) = admin::create_api_key(&store, spec).await?;
            println!("id:  {id}");
            println!("key: {key}");
            println!("(the key is shown only now; authhost keeps a hash)");
        }
        ApiKeysCommand::List => {
            let now = authhost::clock::now();
            println!(
                "{:<12} {:<20} {:<12} {:<24} STATE",
                "ID", "NAME", "SERVER", "SUBJECT"
            );
            for k in store.api_keys().await? {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= now => "expired",
                    _ => "active",
                };
                println!(
                    "{:<12} {:<20} {:<12} {:<24} {state}",
                    k.id, k.name, k.server, k.subject
                );
            }
        }
        ApiKeysCommand::Revoke { id } => {
            if !store.revoke_api_key(&id, authhost::clock::now()).await? {
                anyhow::bail!("no active API key `{id}`");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
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
