//! Components built against contract 0.1.x (`wit/legacy/0.1.1`, which 0.1.0 components
//! also link against): their imports are served by the current host functions and their
//! exports called through conversions, so the rest of the runtime sees one contract.
//! What 0.1.x lacks (`default-allowed-hosts`) reads as empty.

use super::bindings as current;
use super::call::CallState;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{AsContextMut, Result, Store};

mod v0_1 {
    wasmtime::component::bindgen!({
        world: "provider",
        path: "../wit/legacy/0.1.1",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub use v0_1::Provider as World;
use v0_1::authhost::provider::{cache, http_client, log, types};
use v0_1::exports::authhost::provider::{oauth_provider, token_audience};

/// Where a 0.1.x component's exports are; `token-audience` came with 0.1.1.
pub struct ExportIndices {
    core: oauth_provider::GuestIndices,
    audience: Option<token_audience::GuestIndices>,
}

/// The exports of one instantiated 0.1.x component.
pub struct Exports {
    core: oauth_provider::Guest,
    audience: Option<token_audience::Guest>,
}

impl ExportIndices {
    pub fn new<T: 'static>(pre: &InstancePre<T>) -> Result<ExportIndices> {
        Ok(ExportIndices {
            core: oauth_provider::GuestIndices::new(pre)?,
            audience: token_audience::GuestIndices::new(pre).ok(),
        })
    }

    pub fn has_audience_check(&self) -> bool {
        self.audience.is_some()
    }

    pub fn load(&self, mut store: impl AsContextMut, instance: &Instance) -> Result<Exports> {
        let core = self.core.load(&mut store, instance)?;
        let audience = match &self.audience {
            Some(indices) => Some(indices.load(&mut store, instance)?),
            None => None,
        };
        Ok(Exports { core, audience })
    }
}

type Outcome<T> = Result<Result<T, current::ProviderError>>;

impl Exports {
    pub async fn info(&self, store: &mut Store<CallState>) -> Result<current::ProviderInfo> {
        Ok(self.core.call_info(store).await?.into())
    }

    pub async fn authorize_url(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
        request: &current::AuthorizeRequest,
    ) -> Outcome<String> {
        let request = types::AuthorizeRequest {
            state: request.state.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            extra: request.extra.clone(),
        };
        let answer = self
            .core
            .call_authorize_url(store, &config.into(), &request)
            .await?;
        Ok(answer.map_err(Into::into))
    }

    pub async fn exchange_code(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
        exchange: &current::CodeExchange,
    ) -> Outcome<current::TokenSet> {
        let exchange = types::CodeExchange {
            code: exchange.code.clone(),
            code_verifier: exchange.code_verifier.clone(),
            nonce: exchange.nonce.clone(),
        };
        let answer = self
            .core
            .call_exchange_code(store, &config.into(), &exchange)
            .await?;
        Ok(answer.map(Into::into).map_err(Into::into))
    }

    pub async fn refresh(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
        refresh_token: &str,
    ) -> Outcome<current::TokenSet> {
        let answer = self
            .core
            .call_refresh(store, &config.into(), refresh_token)
            .await?;
        Ok(answer.map(Into::into).map_err(Into::into))
    }

    pub async fn user_claims(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
        tokens: &current::TokenSet,
    ) -> Outcome<current::Claims> {
        let tokens = types::TokenSet {
            access_token: tokens.access_token.clone(),
            token_type: tokens.token_type.clone(),
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token.clone(),
            id_token: tokens.id_token.clone(),
            scope: tokens.scope.clone(),
            extra: tokens.extra.clone(),
        };
        let answer = self
            .core
            .call_user_claims(store, &config.into(), &tokens)
            .await?;
        Ok(answer.map(Into::into).map_err(Into::into))
    }

    pub async fn revoke(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
        token: &str,
        kind: current::TokenKind,
    ) -> Outcome<()> {
        let kind = match kind {
            current::TokenKind::AccessToken => types::TokenKind::AccessToken,
            current::TokenKind::RefreshToken => types::TokenKind::RefreshToken,
        };
        let answer = self
            .core
            .call_revoke(store, &config.into(), token, kind)
            .await?;
        Ok(answer.map_err(Into::into))
    }

    /// `None` when the component predates `token-audience` (0.1.0).
    pub async fn can_check(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
    ) -> Result<Option<bool>> {
        match &self.audience {
            Some(audience) => Ok(Some(audience.call_can_check(store, &config.into()).await?)),
            None => Ok(None),
        }
    }

    pub async fn issued_to_client(
        &self,
        store: &mut Store<CallState>,
        config: &current::ProviderConfig,
        access_token: &str,
    ) -> Outcome<bool> {
        let Some(audience) = &self.audience else {
            return Ok(Err(current::ProviderError::Unsupported));
        };
        let answer = audience
            .call_issued_to_client(store, &config.into(), access_token)
            .await?;
        Ok(answer.map_err(Into::into))
    }
}

// The imports: the same host functions as the current contract.

impl types::Host for CallState {}

impl http_client::Host for CallState {
    async fn send(
        &mut self,
        request: http_client::Request,
    ) -> Result<Result<http_client::Response, http_client::HttpError>> {
        let client_auth = match request.client_auth {
            http_client::ClientAuth::None => current::ClientAuth::None,
            http_client::ClientAuth::Basic => current::ClientAuth::Basic,
            http_client::ClientAuth::FormPost => current::ClientAuth::FormPost,
        };
        let request = current::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            client_auth,
        };
        let answer = self.http_send(request).await?;
        Ok(match answer {
            Ok(response) => Ok(http_client::Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(error) => Err(match error {
                current::HttpError::Denied(why) => http_client::HttpError::Denied(why),
                current::HttpError::Timeout => http_client::HttpError::Timeout,
                current::HttpError::TooLarge(limit) => http_client::HttpError::TooLarge(limit),
                current::HttpError::InvalidRequest(why) => {
                    http_client::HttpError::InvalidRequest(why)
                }
                current::HttpError::Network(why) => http_client::HttpError::Network(why),
            }),
        })
    }
}

impl cache::Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<String>> {
        current::authhost::provider::cache::Host::get(self, key).await
    }

    async fn set(&mut self, key: String, value: String, ttl_seconds: u32) -> Result<()> {
        current::authhost::provider::cache::Host::set(self, key, value, ttl_seconds).await
    }
}

impl log::Host for CallState {
    async fn write(&mut self, level: log::Level, message: String) -> Result<()> {
        use current::authhost::provider::log::Level;
        let level = match level {
            log::Level::Debug => Level::Debug,
            log::Level::Info => Level::Info,
            log::Level::Warn => Level::Warn,
            log::Level::Error => Level::Error,
        };
        current::authhost::provider::log::Host::write(self, level, message).await
    }
}

// The shapes, converted where they cross.

impl From<&current::ProviderConfig> for types::ProviderConfig {
    fn from(config: &current::ProviderConfig) -> Self {
        types::ProviderConfig {
            client_id: config.client_id.clone(),
            redirect_uri: config.redirect_uri.clone(),
            scopes: config.scopes.clone(),
            settings: config.settings.clone(),
            has_client_secret: config.has_client_secret,
        }
    }
}

impl From<types::ProviderInfo> for current::ProviderInfo {
    fn from(info: types::ProviderInfo) -> Self {
        let settings = info
            .settings
            .into_iter()
            .map(|spec| current::SettingSpec {
                name: spec.name,
                kind: match spec.kind {
                    types::SettingKind::Text => current::SettingKind::Text,
                    types::SettingKind::Url => current::SettingKind::Url,
                    types::SettingKind::List => current::SettingKind::List,
                    types::SettingKind::Boolean => current::SettingKind::Boolean,
                },
                required: spec.required,
                default_value: spec.default_value,
                description: spec.description,
            })
            .collect();
        current::ProviderInfo {
            id: info.id,
            display_name: info.display_name,
            version: info.version,
            default_scopes: info.default_scopes,
            settings,
            supports_pkce: info.supports_pkce,
            supports_refresh: info.supports_refresh,
            supports_revoke: info.supports_revoke,
            // Added in 0.2.0: an older component declares none.
            default_allowed_hosts: Vec::new(),
        }
    }
}

impl From<types::TokenSet> for current::TokenSet {
    fn from(tokens: types::TokenSet) -> Self {
        current::TokenSet {
            access_token: tokens.access_token,
            token_type: tokens.token_type,
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token,
            scope: tokens.scope,
            extra: tokens.extra,
        }
    }
}

impl From<types::Claims> for current::Claims {
    fn from(claims: types::Claims) -> Self {
        current::Claims {
            subject: claims.subject,
            username: claims.username,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
            groups: claims.groups,
            roles: claims.roles,
            extra_json: claims.extra_json,
        }
    }
}

impl From<types::ProviderError> for current::ProviderError {
    fn from(error: types::ProviderError) -> Self {
        match error {
            types::ProviderError::InvalidConfig(why) => current::ProviderError::InvalidConfig(why),
            types::ProviderError::InvalidGrant(why) => current::ProviderError::InvalidGrant(why),
            types::ProviderError::AccessDenied(why) => current::ProviderError::AccessDenied(why),
            types::ProviderError::UpstreamError(why) => current::ProviderError::UpstreamError(why),
            types::ProviderError::UpstreamUnavailable(why) => {
                current::ProviderError::UpstreamUnavailable(why)
            }
            types::ProviderError::Unsupported => current::ProviderError::Unsupported,
        }
    }
}
