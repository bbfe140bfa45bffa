//! Remembered consent (only consulted when `consent.remember` is on): a browser's user
//! approved a client returning to one redirect URI.

use super::Store;

impl Store {
    /// The user who approved `client_id` at `redirect_uri` in this browser, if any.
    pub async fn remembered_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> sqlx::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT subject FROM remembered_consents
             WHERE browser_hash = $1 AND client_id = $2 AND redirect_uri = $3",
        )
        .bind(browser_hash)
        .bind(client_id)
        .bind(redirect_uri)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|(subject,)| subject))
    }

    pub async fn remember_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
        subject: &str,
        now: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO remembered_consents (browser_hash, client_id, redirect_uri, subject, approved_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (browser_hash, client_id, redirect_uri)
             DO UPDATE SET subject = $4, approved_at = $5",
        )
        .bind(browser_hash)
        .bind(client_id)
        .bind(redirect_uri)
        .bind(subject)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn forget_consent(
        &self,
        browser_hash: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "DELETE FROM remembered_consents
             WHERE browser_hash = $1 AND client_id = $2 AND redirect_uri = $3",
        )
        .bind(browser_hash)
        .bind(client_id)
        .bind(redirect_uri)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
