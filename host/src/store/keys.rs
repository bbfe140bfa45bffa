//! Signing keys and remembered consents.

use super::Store;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// Sealed PKCS#8.
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub active: i64,
}

impl Store {
    /// All keys, newest first.
    pub async fn signing_keys(&self) -> sqlx::Result<Vec<SigningKeyRecord>> {
        sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC")
            .fetch_all(self.pool())
            .await
    }

    /// Add a key and make it the only active one (older keys stay in the JWKS).
    pub async fn add_signing_key(&self, key: &SigningKeyRecord) -> sqlx::Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE signing_keys SET active = 0")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, public_jwk, created_at, active)
             VALUES ($1, $2, $3, $4, 1)",
        )
        .bind(&key.kid)
        .bind(&key.private_key)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Drop inactive keys created before `before` (their tokens have expired).
    pub async fn retire_signing_keys(&self, before: i64) -> sqlx::Result<u64> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE active = 0 AND created_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn has_consent(&self, browser_hash: &str, client_id: &str) -> sqlx::Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT approved_at FROM consents WHERE browser_hash = $1 AND client_id = $2",
        )
        .bind(browser_hash)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    pub async fn record_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        now: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO consents (browser_hash, client_id, approved_at) VALUES ($1, $2, $3)
             ON CONFLICT (browser_hash, client_id) DO UPDATE SET approved_at = $3",
        )
        .bind(browser_hash)
        .bind(client_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
