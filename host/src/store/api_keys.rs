//! API keys of service accounts, kept as sha256 hashes.

use super::Store;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    /// The `mcp_servers` name the key is for, or `*`.
    pub server: String,
    pub subject: String,
    /// JSON array.
    pub groups: String,
    /// JSON array.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, server, subject, groups, scopes, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.server)
        .bind(&key.subject)
        .bind(&key.groups)
        .bind(&key.scopes)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The key with this hash, if it is neither revoked nor expired.
    pub async fn live_api_key(
        &self,
        key_hash: &str,
        now: i64,
    ) -> sqlx::Result<Option<ApiKeyRecord>> {
        sqlx::query_as(
            "SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(key_hash)
        .bind(now)
        .fetch_optional(self.reader())
        .await
    }

    pub async fn api_keys(&self) -> sqlx::Result<Vec<ApiKeyRecord>> {
        sqlx::query_as("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(self.reader())
            .await
    }

    /// Revoke by id; false when there is no such live key.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> sqlx::Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
