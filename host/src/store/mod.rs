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
    /// Reads. On SQLite, several connections read at once (WAL).
    reader: AnyPool,
    /// Writes. On SQLite one connection, so writers queue in the pool (cheaply, in
    /// order) instead of contending for the file lock (busy waits, the p99 of a token
    /// endpoint under load). On PostgreSQL the same pool as `reader`.
    writer: AnyPool,
    /// Counts changes to grants made through this store (revocations, new claims), so
    /// caches of grants can tell that one of theirs may have changed.
    grant_changes: Arc<AtomicU64>,
}

/// Connections per pool: enough for the two cores' worth of concurrent requests with
/// room for slow queries; PostgreSQL's default of 100 connections allows several
/// instances.
const POOL_SIZE: u32 = 8;

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
        let pool = |size: u32| {
            AnyPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if sqlite {
                            // Another process (the CLI, a second instance) may hold the
                            // write lock for a moment.
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // With WAL, NORMAL cannot corrupt the database; a power
                            // loss may undo the last transactions.
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                        }
                        Ok(())
                    })
                })
        };
        let open = |size: u32| {
            let url = url.clone();
            async move {
                pool(size)
                    .connect(&url)
                    .await
                    .map_err(|e| anyhow::anyhow!("database {}: {e}", redact_url(&url)))
            }
        };
        // An in-memory SQLite database exists once per connection: one for everything.
        let writer = open(if sqlite { 1 } else { POOL_SIZE }).await?;
        if sqlite && !in_memory {
            writer.execute("PRAGMA journal_mode = WAL").await?;
        }
        MIGRATOR.run(&writer).await?;
        let reader = if sqlite && !in_memory {
            open(POOL_SIZE).await?
        } else {
            writer.clone()
        };
        Ok(Store {
            reader,
            writer,
            grant_changes: Arc::default(),
        })
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1")
            .execute(self.reader())
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

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
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
