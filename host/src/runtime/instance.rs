//! A configured provider: a component plus one operator's settings, credentials,
//! allowed hosts and limits. Several instances may share one component.

use super::bindings::{
    AuthorizeRequest, Claims, CodeExchange, Exports, ProviderConfig, SettingKind, TokenKind,
    TokenSet,
};
use super::call::{self, CallFuture, CallState};
use super::error::CallError;
use super::kv::KvCache;
use super::outbound::ClientCredentials;
use super::outputs;
use super::sandbox::{AllowList, Limits};
use super::{ProviderComponent, Runtime, Sandbox};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;
use wasmtime::Store;

/// What the operator configured for one provider instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceSpec {
    /// The instance id (the config table's name), e.g. `corp-keycloak`.
    pub id: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// authhost's callback URL registered at the upstream.
    pub redirect_uri: String,
    /// Scopes to request upstream; the component's defaults when `None`.
    pub scopes: Option<Vec<String>>,
    /// Provider-specific settings.
    pub settings: BTreeMap<String, String>,
    /// Hosts the component may call; when `None`, the hosts of its URL settings and
    /// those it declares in `default-allowed-hosts`.
    pub allowed_hosts: Option<Vec<String>>,
    pub limits: Limits,
}

/// A provider ready to serve calls.
pub struct ProviderInstance {
    pub id: String,
    pub component: Arc<ProviderComponent>,
    runtime: Arc<Runtime>,
    sandbox: Arc<Sandbox>,
    config: ProviderConfig,
}

impl std::fmt::Debug for ProviderInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderInstance")
            .field("id", &self.id)
            .field("component", &self.component.info.id)
            .finish_non_exhaustive()
    }
}

impl ProviderInstance {
    /// Check `spec` against what the component declares. Every problem is reported,
    /// each naming the key.
    pub fn new(
        runtime: Arc<Runtime>,
        component: Arc<ProviderComponent>,
        spec: InstanceSpec,
    ) -> Result<ProviderInstance, Vec<String>> {
        let info = &component.info;
        let mut problems = Vec::new();
        let mut settings = BTreeMap::new();
        for key in spec.settings.keys() {
            if !info.settings.iter().any(|s| &s.name == key) {
                let known: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
                problems.push(format!(
                    "unknown key `{key}`; the {} component accepts: {}",
                    info.id,
                    if known.is_empty() {
                        "no settings".into()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        let mut derived_hosts = Vec::new();
        for declared in &info.settings {
            let value = spec
                .settings
                .get(&declared.name)
                .cloned()
                .or_else(|| declared.default_value.clone());
            let Some(value) = value else {
                if declared.required {
                    problems.push(format!(
                        "missing key `{}`: {}",
                        declared.name, declared.description
                    ));
                }
                continue;
            };
            match declared.kind {
                SettingKind::Url => match Url::parse(&value) {
                    Ok(url) => derived_hosts.extend(AllowList::entry_for(&url)),
                    Err(e) => problems.push(format!(
                        "key `{}` must be an absolute URL: `{value}` ({e})",
                        declared.name
                    )),
                },
                SettingKind::Boolean if !matches!(value.as_str(), "true" | "false") => problems
                    .push(format!(
                        "key `{}` must be true or false, not `{value}`",
                        declared.name
                    )),
                _ => {}
            }
            settings.insert(declared.name.clone(), value);
        }
        if spec.client_id.is_empty() {
            problems.push("missing key `client_id`".into());
        }
        if spec.limits.memory_bytes > runtime.max_memory_bytes() {
            problems.push(format!(
                "key `max_memory_mib` is above the runtime's maximum of {} MiB",
                runtime.max_memory_bytes() >> 20
            ));
        }
        // The operator's list wins; without one, what the settings and the component say.
        derived_hosts.extend(info.default_allowed_hosts.iter().cloned());
        let allowed = match &spec.allowed_hosts {
            Some(hosts) => AllowList::parse(hosts),
            None => AllowList::parse(&derived_hosts),
        };
        let allowed = allowed.unwrap_or_else(|e| {
            problems.push(e);
            AllowList::default()
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        let config = ProviderConfig {
            client_id: spec.client_id.clone(),
            redirect_uri: spec.redirect_uri.clone(),
            scopes: spec.scopes.unwrap_or_else(|| info.default_scopes.clone()),
            settings: settings.into_iter().collect(),
            has_client_secret: spec.client_secret.is_some(),
        };
        let sandbox = Arc::new(Sandbox {
            name: spec.id.clone(),
            allowed,
            limits: spec.limits,
            credentials: ClientCredentials {
                client_id: spec.client_id,
                client_secret: spec.client_secret,
            },
            cache: KvCache::default(),
        });
        Ok(ProviderInstance {
            id: spec.id,
            component,
            runtime,
            sandbox,
            config,
        })
    }

    /// The hosts this instance may call, as written entries.
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.sandbox.allowed.describe()
    }

    pub fn limits(&self) -> &Limits {
        &self.sandbox.limits
    }

    /// The scopes requested upstream.
    pub fn scopes(&self) -> &[String] {
        &self.config.scopes
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        body: impl for<'a> FnOnce(&'a Exports, &'a mut Store<CallState>) -> CallFuture<'a, T>,
    ) -> Result<T, CallError> {
        let started = std::time::Instant::now();
        let result = call::run(
            &self.runtime,
            &self.component.pre,
            &self.sandbox,
            operation,
            body,
        )
        .await;
        if let Some(metrics) = &self.runtime.metrics {
            metrics.provider_call(&self.id, operation, result.is_ok(), started.elapsed());
        }
        result
    }

    pub async fn authorize_url(&self, request: AuthorizeRequest) -> Result<String, CallError> {
        let config = self.config.clone();
        let url = self
            .call("authorize-url", move |p, s| {
                Box::pin(async move { p.authorize_url(s, &config, &request).await })
            })
            .await?;
        self.checked("authorize-url", url, |url| {
            outputs::authorize_url(url, &self.sandbox.allowed)
        })
    }

    /// An output that passed `check`, or the call's error naming the provider.
    fn checked<T>(
        &self,
        operation: &'static str,
        output: T,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<T, CallError> {
        check(&output).map_err(|detail| {
            tracing::warn!(
                provider = self.id,
                "{operation} returned an invalid value: {detail}"
            );
            CallError::Invalid {
                provider: self.id.clone(),
                operation,
                detail,
            }
        })?;
        Ok(output)
    }

    pub async fn exchange_code(&self, exchange: CodeExchange) -> Result<TokenSet, CallError> {
        let config = self.config.clone();
        let output = self
            .call("exchange-code", move |p, s| {
                Box::pin(async move { p.exchange_code(s, &config, &exchange).await })
            })
            .await?;
        self.checked("exchange-code", output, outputs::token_set)
    }

    pub async fn refresh(&self, refresh_token: String) -> Result<TokenSet, CallError> {
        let config = self.config.clone();
        let output = self
            .call("refresh", move |p, s| {
                Box::pin(async move { p.refresh(s, &config, &refresh_token).await })
            })
            .await?;
        self.checked("refresh", output, outputs::token_set)
    }

    pub async fn user_claims(&self, tokens: TokenSet) -> Result<Claims, CallError> {
        let config = self.config.clone();
        let output = self
            .call("user-claims", move |p, s| {
                Box::pin(async move { p.user_claims(s, &config, &tokens).await })
            })
            .await?;
        self.checked("user-claims", output, outputs::claims)
    }

    pub async fn revoke(&self, token: String, kind: TokenKind) -> Result<(), CallError> {
        let config = self.config.clone();
        self.call("revoke", move |p, s| {
            Box::pin(async move { p.revoke(s, &config, &token, kind).await })
        })
        .await
    }

    /// Whether the component can tell whose token it is given (`token-audience`, in
    /// contracts from 0.1.1) with this configuration.
    pub async fn can_check_audience(&self) -> Result<bool, CallError> {
        if !self.component.pre.exports.has_audience_check() {
            return Ok(false);
        }
        let config = self.config.clone();
        self.call("can-check", move |p, s| {
            Box::pin(async move { Ok(Ok(p.can_check(s, &config).await?.unwrap_or(false))) })
        })
        .await
    }

    /// Whether `access_token` was issued to this instance's upstream client.
    /// `Unsupported` from components that cannot tell.
    pub async fn issued_to_client(&self, access_token: String) -> Result<bool, CallError> {
        let config = self.config.clone();
        self.call("issued-to-client", move |p, s| {
            Box::pin(async move { p.issued_to_client(s, &config, &access_token).await })
        })
        .await
    }
}
