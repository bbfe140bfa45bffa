//! Native unit tests: the SDK's fixture upstream answers instead of GitLab.

use super::*;
use authhost_provider_sdk::CodeExchange;
use authhost_provider_sdk::testing::{Upstream, config, tokens};

const GITLAB: &str = "https://gitlab.example.com";

#[test]
fn the_user_maps_to_claims() {
    let upstream = Upstream::new().json(
        "GET",
        &format!("{GITLAB}/api/v4/user"),
        200,
        json!({"id": 7, "username": "ada", "email": "ada@x", "confirmed_at": "2024-01-01",
            "name": "Ada", "web_url": "https://gitlab.example.com/ada"}),
    );
    let _on = upstream.install();
    let claims = GitLab::user_claims(config(&[("base_url", GITLAB)]), tokens("at")).unwrap();
    assert_eq!(claims.subject, "7");
    assert!(claims.email_verified);
    assert_eq!(claims.extra["web_url"], "https://gitlab.example.com/ada");
    assert_eq!(
        upstream.only_request().header("authorization"),
        Some("Bearer at")
    );
}

#[test]
fn a_public_client_names_itself_in_the_code_grant() {
    let upstream = Upstream::new().json(
        "POST",
        &format!("{GITLAB}/oauth/token"),
        200,
        json!({"access_token": "at", "token_type": "bearer", "expires_in": 7200, "refresh_token": "rt"}),
    );
    let _on = upstream.install();
    let mut config = config(&[("base_url", GITLAB)]);
    config.has_client_secret = false;
    let exchange = CodeExchange {
        code: "c".into(),
        code_verifier: Some("v".into()),
        nonce: "n".into(),
    };
    let tokens = GitLab::exchange_code(config, exchange).unwrap();
    assert_eq!(
        (tokens.expires_in, tokens.refresh_token.as_deref()),
        (Some(7200), Some("rt"))
    );
    let form = upstream.only_request().form();
    assert!(
        form.contains(&("client_id".into(), "test-client".into())),
        "{form:?}"
    );
    assert!(
        form.contains(&("code_verifier".into(), "v".into())),
        "{form:?}"
    );
}

#[test]
fn a_refused_code_is_an_invalid_grant() {
    let upstream = Upstream::new().json(
        "POST",
        &format!("{GITLAB}/oauth/token"),
        400,
        json!({"error": "invalid_grant", "error_description": "The code has expired"}),
    );
    let _on = upstream.install();
    let exchange = CodeExchange {
        code: "old".into(),
        code_verifier: None,
        nonce: "n".into(),
    };
    let err = GitLab::exchange_code(config(&[("base_url", GITLAB)]), exchange).unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant(_)));
}
