//! The upstream provider sends the browser back here: redeem its code through the
//! provider component, map the user's claims, and hand the client authhost's own code.

use super::authorize::{ClientRedirect, QueryMap, expired_page};
use super::error::{ErrorPage, OAuthError};
use crate::audit::Event;
use crate::crypto;
use crate::gateway::caller::User;
use crate::gateway::upstream_token::stored_form;
use crate::runtime::{CodeExchange, ProviderError};
use crate::state::AppState;
use crate::store::Grant;
use axum::extract::{Path, State};
use axum::response::Response;

pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    axum::extract::Query(query): QueryMap,
) -> Result<Response, ErrorPage> {
    let now = crate::clock::now();
    let upstream_state = query.get("state").ok_or_else(expired_page)?;
    let authorization = state
        .store
        .take_authorization_by_state(upstream_state, now)
        .await?
        .ok_or_else(expired_page)?;
    if authorization.provider != provider {
        return Err(expired_page());
    }
    let back = ClientRedirect {
        redirect_uri: authorization.redirect_uri.clone(),
        state: authorization.client_state.clone(),
        issuer: &state.issuer,
    };
    if let Some(error) = query.get("error") {
        state.metrics.flow(&provider, "refused");
        state.audit.record(Event {
            event: "sign_in_failed",
            client_id: Some(&authorization.client_id),
            provider: Some(&provider),
            detail: Some(format!("the identity provider answered `{error}`")),
            ..Event::default()
        });
        return Ok(back.error(OAuthError::access_denied(format!(
            "sign-in at the identity provider failed: {error}"
        ))));
    }
    let Some(code) = query.get("code") else {
        return Ok(back.error(OAuthError::server_error(
            "the identity provider returned no code",
        )));
    };
    let instance = state
        .registry
        .instances
        .get(&provider)
        .ok_or_else(expired_page)?;
    let verifier = authorization
        .upstream_verifier
        .as_deref()
        .and_then(|sealed| state.sealer.open(sealed).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let exchange = CodeExchange {
        code: code.clone(),
        code_verifier: verifier.filter(|_| instance.component.info.supports_pkce),
        nonce: authorization.upstream_nonce.clone().unwrap_or_default(),
    };
    let signed_in = async {
        let tokens = instance.exchange_code(exchange).await?;
        let claims = instance.user_claims(tokens.clone()).await?;
        Ok::<_, crate::runtime::CallError>((tokens, claims))
    }
    .await;
    let (tokens, claims) = match signed_in {
        Ok(result) => result,
        Err(error) => {
            tracing::warn!("sign-in failed: {error}");
            state.metrics.flow(&provider, "failed");
            state.audit.record(Event {
                event: "sign_in_failed",
                client_id: Some(&authorization.client_id),
                provider: Some(&provider),
                detail: Some(error.to_string()),
                ..Event::default()
            });
            let oauth = match error.provider_error() {
                Some(ProviderError::AccessDenied(m)) => OAuthError::access_denied(m.clone()),
                _ => OAuthError::server_error(format!(
                    "sign-in with {provider} failed; see the server log"
                )),
            };
            return Ok(back.error(oauth));
        }
    };
    let code = crypto::random_token();
    let upstream = stored_form(&tokens, now, None);
    let user = serde_json::to_value(User::from_claims(&claims)).unwrap_or_default();
    let grant = Grant {
        id: crypto::random_token(),
        client_id: authorization.client_id.clone(),
        provider: provider.clone(),
        subject: claims.subject.clone(),
        claims: user.to_string(),
        scope: authorization.scope.clone(),
        resource: authorization.resource.clone(),
        redirect_uri: authorization.redirect_uri.clone(),
        code_challenge: authorization.code_challenge.clone(),
        code_hash: Some(crypto::hash_token(&code)),
        code_expires_at: now + state.config.tokens.authorization_code_ttl as i64,
        code_used_at: None,
        upstream_tokens: Some(state.sealer.seal(upstream.to_string().as_bytes())),
        created_at: now,
        revoked_at: None,
    };
    state
        .store
        .insert_grant(&grant)
        .await
        .map_err(|e| ErrorPage::from(OAuthError::internal("storing the grant", e)))?;
    state.metrics.flow(&provider, "completed");
    state.audit.record(Event {
        event: "sign_in",
        user: Some(&claims.subject),
        client_id: Some(&grant.client_id),
        provider: Some(&provider),
        resource: Some(&grant.resource),
        detail: None,
    });
    Ok(back.code(code))
}
