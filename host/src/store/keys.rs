//! Access token signing keys: the newest active one signs; keys not retired verify and
//! are published in the JWKS.

use super::Store;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// Sealed PKCS#8; emptied when the key is retired.
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub active: i64,
    /// When a newer key took over signing.
    pub deactivated_at: Option<i64>,
    /// When the key stopped verifying.
    pub retired_at: Option<i64>,
}

/// Why a key could not be retired.
#[derive(Debug, PartialEq)]
pub enum RetireRefusal {
    Unknown,
    Active,
    AlreadyRetired,
}

impl Store {
    /// All keys, retired ones included, newest first.
    pub async fn signing_keys(&self) -> sqlx::Result<Vec<SigningKeyRecord>> {
        sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC")
            .fetch_all(self.reader())
            .await
    }

    /// Add a key and make it the only active one (older keys keep verifying).
    pub async fn add_signing_key(&self, key: &SigningKeyRecord) -> sqlx::Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("UPDATE signing_keys SET active = 0, deactivated_at = $1 WHERE active = 1")
            .bind(key.created_at)
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

    /// Retire one key: the tokens it signed stop verifying. The active key cannot be
    /// retired (rotate first).
    pub async fn retire_signing_key(
        &self,
        kid: &str,
        now: i64,
    ) -> sqlx::Result<Result<(), RetireRefusal>> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1, private_key = ''
             WHERE kid = $2 AND active = 0 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(kid)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT active, retired_at FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .fetch_optional(self.reader())
                .await?;
        Ok(Err(match row {
            None => RetireRefusal::Unknown,
            Some((1, _)) => RetireRefusal::Active,
            Some(_) => RetireRefusal::AlreadyRetired,
        }))
    }

    /// Retire every inactive key that stopped signing before `before`: every token it
    /// signed has expired. Returns their ids.
    pub async fn retire_signing_keys_before(
        &self,
        before: i64,
        now: i64,
    ) -> sqlx::Result<Vec<String>> {
        // Keys from before deactivation was recorded count from now.
        sqlx::query(
            "UPDATE signing_keys SET deactivated_at = $1
             WHERE active = 0 AND deactivated_at IS NULL AND retired_at IS NULL",
        )
        .bind(now)
        .execute(self.writer())
        .await?;
        let due: Vec<(String,)> = sqlx::query_as(
            "SELECT kid FROM signing_keys
             WHERE active = 0 AND retired_at IS NULL AND deactivated_at < $1",
        )
        .bind(before)
        .fetch_all(self.reader())
        .await?;
        for (kid,) in &due {
            let _ = self.retire_signing_key(kid, now).await?;
        }
        Ok(due.into_iter().map(|(kid,)| kid).collect())
    }
}
