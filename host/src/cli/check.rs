//! `authhost check`: everything `serve` would refuse to start with, all at once, each
//! problem under its key, without listening or changing anything.

use crate::config::Config;
use crate::domain::clients::Clients;
use crate::registry::Registry;
use crate::runtime::Runtime;

pub async fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let issuer = config.server.base_url();
    problems.extend(config.server.base_url_problem());
    match url::Url::parse(&issuer) {
        Ok(url) if url.scheme() == "https" || is_loopback(&url) => {}
        Ok(_) => problems.push(format!(
            "server.base_url: `{issuer}` is plain http on a non-loopback host; MCP clients require https (put a TLS proxy in front and give its URL)"
        )),
        Err(e) => problems.push(format!("server.base_url: `{issuer}`: {e}")),
    }
    if let Err(list) = crate::forwarded::parse_trusted(&config.server.trusted_proxies) {
        problems.extend(list);
    }
    for pattern in &config.registration.allowed_redirect_uris {
        if let Err(e) = crate::oauth::redirect_patterns::check(pattern) {
            problems.push(format!("registration.allowed_redirect_uris: {e}"));
        }
    }
    if let Err(list) = crate::domain::id_jag::TrustedIssuers::new(&config.enterprise) {
        problems.extend(list);
    }
    if let Err(e) = Clients::new(&config.clients, None) {
        problems.push(format!("clients: {e:#}"));
    }
    let runtime = match Runtime::new(crate::server::runtime_config(config)) {
        Ok(runtime) => runtime,
        Err(e) => {
            problems.push(format!("runtime: {e:#}"));
            return problems;
        }
    };
    match Registry::load_checked(runtime, config, config.runtime.providers_dir.as_deref()).await {
        Ok((registry, provider_problems)) => {
            problems.extend(provider_problems);
            for refused in &registry.refused {
                problems.push(format!("runtime.providers_dir: {refused}"));
            }
            use crate::gateway::resource;
            match resource::build(config, &issuer, &registry) {
                Ok(resources) => {
                    let audiences =
                        resource::check_client_token_audiences(&resources, &registry).await;
                    problems.extend(audiences.err().unwrap_or_default());
                }
                Err(list) => problems.extend(list),
            }
        }
        Err(e) => problems.push(format!("{e:#}")),
    }
    if config.server.database_url().starts_with("postgres")
        && let Err(e) = crate::store::Store::connect(&config.server.database_url()).await
    {
        problems.push(format!("server.database_url: {e:#}"));
    }
    problems
}

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}
