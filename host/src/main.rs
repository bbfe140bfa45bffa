//! The `authhost` command line.

use authhost::cli::api_keys::ApiKeysCommand;
use authhost::cli::clients::ClientsCommand;
use authhost::cli::providers::ProvidersCommand;
use authhost::cli::store;
use authhost::config::{Config, LogFormat};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
enum KeysCommand {
    /// Create a new signing key and make it the active one; older keys stay published
    /// in the JWKS so tokens they signed keep validating.
    Rotate,
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
            Command::Clients(command) => command.run(&config).await,
            Command::ApiKeys(command) => command.run(&config).await,
            Command::Providers(command) => command.run(&config).await,
        }
    })
}
