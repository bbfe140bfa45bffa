//! Signing keys rotate and retire on running servers: the operator's `authhost keys`
//! command (the real CLI, run against the same database) changes them, and every
//! instance follows within `tokens.key_refresh_seconds`, without a restart. A retired
//! key's tokens are refused everywhere, even where they were verified and cached.
//! On SQLite and PostgreSQL.

use crate::common::instances::two_instances;
use crate::common::server::{Browser, Options, TestAuthhost, http, start_upstream};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

/// `authhost --config <file> <args>` against the instances' database and key file.
async fn authhost_cli(instance: &TestAuthhost, args: &[&str]) -> anyhow::Result<()> {
    let server = &instance.state.config.server;
    let config = server.data_dir.join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\ndatabase_url = {:?}\n",
            server.data_dir.display().to_string(),
            server.database_url()
        ),
    )?;
    let mut argv = vec![
        "authhost".to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || authhost::cli::run(argv)).await?
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(instance: &TestAuthhost) -> Vec<String> {
    let jwks: Value = http()
        .get(instance.own_url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Wait (polling, up to `bound`) until `done` holds.
async fn within<F: AsyncFn() -> bool>(bound: Duration, what: &str, done: F) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rotate_and_retire_on_running_instances(backend: &str) {
    let upstream = start_upstream();
    let options = Options::with(|config| config.tokens.key_refresh_seconds = 1);
    let Some((a, b, _)) = two_instances(backend, &upstream, options).await else {
        return;
    };
    let bound = Duration::from_secs(4);
    let client = a.register("Key rotation client").await;
    let first = a.sign_in(&Browser::new(), &client).await;
    let old_access = first["access_token"].as_str().unwrap().to_string();
    let old_kid = kid_of(&old_access);
    // B verifies (and caches) the token before anything changes.
    assert_eq!(b.whoami("/mcp", &old_access).await.status(), StatusCode::OK);

    authhost_cli(&a, &["keys", "rotate"]).await.unwrap();
    for instance in [&a, &b] {
        within(bound, "the JWKS publishes both keys", async || {
            jwks_kids(instance).await.len() == 2
        })
        .await;
    }
    let new_kid = a.state.signer.signing_kid();
    assert_ne!(new_kid, old_kid);
    // The next token, issued by either instance, is signed with the new key.
    within(bound, "B signs with the new key", async || {
        b.state.signer.signing_kid() == new_kid
    })
    .await;
    let (status, refreshed) = b
        .refresh(&client, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let new_access = refreshed["access_token"].as_str().unwrap().to_string();
    assert_eq!(kid_of(&new_access), new_kid);
    assert_eq!(
        a.whoami("/mcp", &old_access).await.status(),
        StatusCode::OK,
        "tokens of the previous key keep working until it is retired"
    );
    authhost_cli(&a, &["keys", "list"]).await.unwrap();

    let refused = authhost_cli(&a, &["keys", "retire", &new_kid])
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("active signing key"),
        "{refused}"
    );
    authhost_cli(&a, &["keys", "retire", &old_kid])
        .await
        .unwrap();
    for instance in [&a, &b] {
        within(bound, "the retired key's token is refused", async || {
            instance.whoami("/mcp", &old_access).await.status() == StatusCode::UNAUTHORIZED
        })
        .await;
        assert_eq!(jwks_kids(instance).await, vec![new_kid.clone()]);
        assert_eq!(
            instance.whoami("/mcp", &new_access).await.status(),
            StatusCode::OK
        );
    }
    assert!(
        authhost_cli(&a, &["keys", "retire", &old_kid])
            .await
            .unwrap_err()
            .to_string()
            .contains("already retired")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_retire_on_running_instances_sqlite() {
    rotate_and_retire_on_running_instances("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_retire_on_running_instances_postgres() {
    rotate_and_retire_on_running_instances("postgres").await;
}

/// A key that stopped signing retires itself once every token it could have signed
/// has expired; until then it keeps verifying.
#[tokio::test]
async fn keys_retire_themselves_once_their_tokens_have_expired() {
    let upstream = start_upstream();
    let a = TestAuthhost::start(&upstream, Options::default()).await;
    let state = &a.state;
    let old = state.signer.signing_kid();
    authhost::domain::keys::rotate(&state.store, &state.sealer, state.clock.now())
        .await
        .unwrap();
    state
        .signer
        .refresh(&state.store, &state.sealer)
        .await
        .unwrap();
    let now = authhost::clock::now();
    authhost::server::maintain(state, now).await.unwrap();
    assert_eq!(
        jwks_kids(&a).await.len(),
        2,
        "too early: tokens may be live"
    );
    // Later than the longest token lifetime (access and identity tokens) after the
    // rotation.
    let later = now + state.config.tokens.access_token_ttl as i64 + 3600;
    authhost::server::maintain(state, later).await.unwrap();
    state
        .signer
        .refresh(&state.store, &state.sealer)
        .await
        .unwrap();
    let kids = jwks_kids(&a).await;
    assert_eq!(kids.len(), 1);
    assert!(!kids.contains(&old));
}
