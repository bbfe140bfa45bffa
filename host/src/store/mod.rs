//! Everything a flow needs, in SQLite (default) or PostgreSQL (a `postgres://` URL),
//! so any instance sharing the database can finish any flow, and a restart loses
//! nothing. One schema and one set of queries serve both (sqlx's Any driver).

mod api_keys;
mod clients;
mod consents;
mod flows;
mod keys;

pub use api_keys::ApiKeyRecord;
pub use clients::ClientRecord;
pub use flows::{Authorization, Grant, RedeemError};
pub use keys::{RetireRefusal, SigningKeyRecord};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Counts changes to grants made through this store (revocations, new claims), so
    /// caches of grants can tell that one of theirs may have changed.
    grant_changes: Arc<AtomicU64>,
}

impl Store {
    /// Connect and bring the schema up to date. `sqlite://path` creates the file (and
    /// its folder); `postgres://...` uses an existing database.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let mut url = url.to_string();
        if sqlite {
            if let Some(path) = sqlite_path(&url)
                && let Some(dir) = Path::new(&path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)?;
            }
            if !url.contains("mode=") && !url.contains(":memory:") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let in_memory = url.contains(":memory:");
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database exists once per connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| anyhow::anyhow!("database {}: {e}", redact_url(&url)))?;
        if sqlite && !in_memory {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store {
            pool,
            grant_changes: Arc::default(),
        })
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map(|_| ())
    }

    /// Changes whenever this process revokes a grant or changes its claims.
    pub fn grant_changes(&self) -> u64 {
        self.grant_changes.load(Ordering::Acquire)
    }

    fn grant_changed(&self) {
        self.grant_changes.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_string())
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
