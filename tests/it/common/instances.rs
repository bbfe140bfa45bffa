//! Several authhost instances on one database and data folder (SQLite or PostgreSQL).

use super::postgres;
use super::server::{Options, TestAuthhost};
use super::upstream::Upstream;

pub async fn database(backend: &str, dir: &std::path::Path) -> Option<String> {
    match backend {
        "sqlite" => Some(format!("sqlite://{}", dir.join("shared.db").display())),
        _ => postgres::fresh_database().await,
    }
}

pub fn shared_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shared-{}", authhost::crypto::random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Instances A and B on one database and data folder, B answering for A's public URL,
/// and the options for starting more like B; `None` when the backend is not available.
pub async fn two_instances(
    backend: &str,
    upstream: &Upstream,
    options: Options,
) -> Option<(TestAuthhost, TestAuthhost, Options)> {
    let dir = shared_dir();
    let db = database(backend, &dir).await?;
    let options = Options {
        database_url: Some(db),
        data_dir: Some(dir),
        ..options
    };
    let a = TestAuthhost::start(upstream, options.clone()).await;
    let shared = Options {
        base_url: Some(a.base.clone()),
        ..options
    };
    let b = TestAuthhost::start(upstream, shared.clone()).await;
    Some((a, b, shared))
}
