//! The `authhost` command line: parsing and dispatch (`main.rs` only calls [`run`]),
//! and the operator's commands beside `serve`, one file per group.

pub mod admin;
pub mod api_keys;
pub mod check;
pub mod clients;
pub mod keys;
pub mod providers;

use crate::config::{Config, LogFormat};
use crate::store::Store;
use api_keys::ApiKeysCommand;
use clap::{Parser, Subcommand};
use clients::ClientsCommand;
use keys::KeysCommand;
use providers::ProvidersCommand;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

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

pub async fn store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.server.database_url()).await
}

/// Parse `args` (the program name first) and run the command to its end.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| e.exit());
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
                crate::server::serve(config, dev).await
            }
            Command::Check => check(&config).await,
            Command::Keys(command) => command.run(&config).await,
            Command::Clients(command) => command.run(&config).await,
            Command::ApiKeys(command) => command.run(&config).await,
            Command::Providers(command) => command.run(&config).await,
        }
    })
}

async fn check(config: &Config) -> anyhow::Result<()> {
    let problems = crate::cli::check::check(config).await;
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

/// Logs to stderr. A second call (commands run in-process by tests) keeps the first.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHHOST_LOG")
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().flatten_event(true).try_init(),
    };
}
