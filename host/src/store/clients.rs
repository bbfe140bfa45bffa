//! Dynamically registered clients.

use super::Store;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRecord {
    pub client_id: String,
    /// sha256 of the secret, for confidential clients.
    pub secret_hash: Option<String>,
    pub name: String,
    /// JSON array.
    pub redirect_uris: String,
    pub application_type: String,
    /// The registration response, as stored (JSON).
    pub metadata: String,
    pub created_at: i64,
    /// `dcr` (self-registered) or `operator`.
    pub source: String,
    /// When a sign-in with it last completed.
    pub last_used_at: Option<i64>,
    /// For machine clients: what their tokens may be for (JSON).
    pub machine: Option<String>,
    /// For private_key_jwt clients: their public keys (a JWK Set, JSON).
    pub jwks: Option<String>,
}

impl Store {
    pub async fn insert_client(&self, client: &ClientRecord) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, name, redirect_uris, application_type,
               metadata, created_at, source, machine, jwks)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&client.client_id)
        .bind(&client.secret_hash)
        .bind(&client.name)
        .bind(&client.redirect_uris)
        .bind(&client.application_type)
        .bind(&client.metadata)
        .bind(client.created_at)
        .bind(&client.source)
        .bind(&client.machine)
        .bind(&client.jwks)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> sqlx::Result<Option<ClientRecord>> {
        sqlx::query_as("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(self.reader())
            .await
    }

    pub async fn clients(&self) -> sqlx::Result<Vec<ClientRecord>> {
        sqlx::query_as("SELECT * FROM clients ORDER BY created_at, client_id")
            .fetch_all(self.reader())
            .await
    }

    /// Remove a client and end every grant it holds; false when there is no such client.
    pub async fn remove_client(&self, client_id: &str, now: i64) -> sqlx::Result<bool> {
        let grants: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM grants WHERE client_id = $1 AND revoked_at IS NULL")
                .bind(client_id)
                .fetch_all(self.reader())
                .await?;
        for (grant_id,) in grants {
            self.revoke_grant(&grant_id, now).await?;
        }
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(self.writer())
            .await?;
        // A machine client's tokens have no grant: caches of clients must look again.
        self.grant_changed();
        Ok(done.rows_affected() > 0)
    }

    /// A sign-in with this client completed (self-registered clients never used are
    /// purged).
    pub async fn client_used(&self, client_id: &str, now: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE clients SET last_used_at = $1
             WHERE client_id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(client_id)
        // Recorded at most once a day per client.
        .bind(now - 86_400)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Delete self-registered clients created before `before` and never used.
    pub async fn purge_unused_clients(&self, before: i64) -> sqlx::Result<u64> {
        let done = sqlx::query(
            "DELETE FROM clients WHERE source = 'dcr' AND last_used_at IS NULL AND created_at < $1",
        )
        .bind(before)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }
}
