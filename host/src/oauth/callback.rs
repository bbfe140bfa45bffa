//! The upstream provider sends the browser back here: check that this is the browser
//! that approved the request, redeem the upstream's code through the provider
//! component, map the user's claims, and hand the client authhost's own code.

use super::authorize::{ClientRedirect, QueryMap, cookie, expired_page, flow_cookie, set_cookie};
use super::error::{ErrorPage, OAuthError};
use crate::audit::Event;
use crate::crypto;
use crate::domain::grants::SignIn;
use crate::domain::user::User;
use crate::runtime::{CodeExchange, ProviderError};
use crate::state::AppState;
use crate::store::Authorization;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    axum::extract::Query(query): QueryMap,
) -> Response {
    let Some(upstream_state) = query.get("state") else {
        return expired_page().into_response();
    };
    let mut response = finish(&state, &provider, upstream_state, &headers, &query)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    // The round trip is over, whatever its outcome.
    let (flow_cookie_name, _) = flow_cookie(&state, upstream_state);
    set_cookie(&state, &mut response, &flow_cookie_name, "", 0);
    response
}

async fn finish(
    state: &AppState,
    provider: &str,
    upstream_state: &str,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Result<Response, ErrorPage> {
    let now = state.clock.now();
    // Taken, so used up, before anything else: a callback that fails below cannot be
    // replayed, in this browser or another.
    let returned = state
        .sign_ins
        .returned(upstream_state)
        .await?
        .ok_or_else(expired_page)?;
    let authorization = &returned.request;
    if authorization.provider != provider {
        return Err(expired_page());
    }
    let failed = |detail: String| {
        state.metrics.flow(provider, "failed");
        state.audit.record(Event {
            event: "sign_in_failed",
            client_id: Some(&authorization.client_id),
            provider: Some(provider),
            detail: Some(detail),
            ..Event::default()
        });
    };
    // Only the browser that approved the request may finish it: a sign-in link sent to
    // someone else ends here, before their upstream code is redeemed.
    let (name, expected) = flow_cookie(state, upstream_state);
    let bound = cookie(headers, &name).is_some_and(|value| crypto::same(&value, &expected));
    if !bound {
        failed("the upstream returned to a browser that did not approve the request".into());
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser",
            "The request to sign in was approved in a different browser (or its cookie was \
             lost), so it cannot be finished here. If you did not start it, someone may have \
             sent you this link: close this page. Otherwise start again from your application.",
        ));
    }
    let back = ClientRedirect {
        redirect_uri: authorization.redirect_uri.clone(),
        state: authorization.client_state.clone(),
        issuer: &state.issuer,
    };
    if let Some(error) = query.get("error") {
        state.metrics.flow(provider, "refused");
        state.audit.record(Event {
            event: "sign_in_failed",
            client_id: Some(&authorization.client_id),
            provider: Some(provider),
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
        .get(provider)
        .ok_or_else(expired_page)?;
    let exchange = CodeExchange {
        code: code.clone(),
        code_verifier: returned
            .code_verifier
            .as_ref()
            .filter(|_| instance.component.info.supports_pkce)
            .map(|verifier| verifier.expose().to_string()),
        nonce: returned.nonce.clone(),
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
            failed(error.to_string());
            let oauth = match error.provider_error() {
                Some(ProviderError::AccessDenied(m)) => OAuthError::access_denied(m.clone()),
                _ => OAuthError::server_error(format!(
                    "sign-in with {provider} failed; see the server log"
                )),
            };
            return Ok(back.error(oauth));
        }
    };
    if let Some(approver) = &authorization.remembered_subject
        && *approver != claims.subject
    {
        // Consent was skipped for the user who gave it; someone else signed in.
        forget_consent(state, authorization).await?;
        failed("another user signed in than the one who approved the client".into());
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "Approve this application first",
            "The application was approved in this browser by another user. Start again from \
             your application to review and approve it yourself.",
        ));
    }
    let user = User::from_claims(&claims);
    let (grant, code) = state
        .grants
        .create(SignIn {
            client_id: &authorization.client_id,
            provider,
            user: &user,
            tokens: &tokens,
            scope: &authorization.scope,
            resource: &authorization.resource,
            redirect_uri: &authorization.redirect_uri,
            code_challenge: &authorization.code_challenge,
        })
        .await
        .map_err(|e| ErrorPage::from(OAuthError::internal("storing the grant", e)))?;
    state.store.client_used(&grant.client_id, now).await?;
    if state.config.consent.remember && authorization.remembered_subject.is_none() {
        state
            .store
            .remember_consent(
                &authorization.browser_hash,
                &authorization.client_id,
                &authorization.redirect_uri,
                &claims.subject,
                now,
            )
            .await?;
    }
    state.metrics.flow(provider, "completed");
    state.audit.record(Event {
        event: "sign_in",
        user: Some(&claims.subject),
        client_id: Some(&grant.client_id),
        provider: Some(provider),
        resource: Some(&grant.resource),
        detail: None,
    });
    Ok(back.code(code))
}

async fn forget_consent(state: &AppState, authorization: &Authorization) -> sqlx::Result<()> {
    state
        .store
        .forget_consent(
            &authorization.browser_hash,
            &authorization.client_id,
            &authorization.redirect_uri,
        )
        .await
}
