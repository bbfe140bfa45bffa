//! A fresh PostgreSQL database per test, on the server named by
//! `AUTHHOST_TEST_POSTGRES_URL` (scripts/test starts one). Without it the PostgreSQL
//! variants are skipped, loudly, unless `AUTHHOST_REQUIRE_POSTGRES=1` (CI) makes that
//! a failure.

use sqlx::Connection;

/// The URL of a new, empty database, or `None` when no server is configured.
pub async fn fresh_database() -> Option<String> {
    let Ok(admin_url) = std::env::var("AUTHHOST_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("AUTHHOST_REQUIRE_POSTGRES").is_err(),
            "AUTHHOST_REQUIRE_POSTGRES is set but AUTHHOST_TEST_POSTGRES_URL is not"
        );
        eprintln!(
            "SKIPPED the PostgreSQL variant: set AUTHHOST_TEST_POSTGRES_URL (scripts/test does)"
        );
        return None;
    };
    let name = format!(
        "authhost_test_{}",
        &authhost::crypto::random_token()
            .to_lowercase()
            .replace(['-', '_'], "")[..16]
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}
