//! Authorization requests, grants, authorization codes and refresh token families.
//! Every "use once" is a single conditional UPDATE, so two instances racing on the
//! same code or refresh token cannot both win.

use super::Store;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Authorization {
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub client_state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub provider: String,
    pub browser_hash: String,
    pub upstream_state: Option<String>,
    pub upstream_nonce: Option<String>,
    /// Sealed PKCE verifier for the upstream.
    pub upstream_verifier: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when consent was remembered rather than given: the user who gave it, who
    /// must be the one signing in.
    pub remembered_subject: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub provider: String,
    pub subject: String,
    /// The user's claims (JSON).
    pub claims: String,
    pub scope: String,
    pub resource: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub code_hash: Option<String>,
    pub code_expires_at: i64,
    pub code_used_at: Option<i64>,
    /// Sealed upstream token set (JSON).
    pub upstream_tokens: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When the upstream last confirmed the claims (`None`: at creation).
    pub claims_checked_at: Option<i64>,
}

/// Where an authorization stands. Only the store moves it on, in one conditional
/// UPDATE each, so a state cannot be skipped or entered twice.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FlowStatus {
    /// The user approved; the browser went to the upstream.
    Upstream,
    /// The upstream's callback came (whatever its outcome): never usable again.
    Done,
}

impl FlowStatus {
    fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Upstream => "upstream",
            FlowStatus::Done => "done",
        }
    }
}

/// Why a code or refresh token could not be redeemed.
#[derive(Debug, PartialEq)]
pub enum RedeemError {
    Unknown,
    Expired,
    /// Used before: the grant it belongs to has been revoked.
    Replayed {
        grant_id: String,
    },
    /// The grant was revoked.
    Revoked,
}

impl Store {
    /// The user approved (or had approved) the request: the browser goes upstream.
    /// False when an authorization with this id exists already (a form sent twice).
    pub async fn insert_authorization(&self, a: &Authorization) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO authorizations (id, client_id, redirect_uri, client_state, code_challenge,
               scope, resource, provider, browser_hash, status, upstream_state, upstream_nonce,
               upstream_verifier, created_at, expires_at, remembered_subject)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&a.id)
        .bind(&a.client_id)
        .bind(&a.redirect_uri)
        .bind(&a.client_state)
        .bind(&a.code_challenge)
        .bind(&a.scope)
        .bind(&a.resource)
        .bind(&a.provider)
        .bind(&a.browser_hash)
        .bind(FlowStatus::Upstream.as_str())
        .bind(&a.upstream_state)
        .bind(&a.upstream_nonce)
        .bind(&a.upstream_verifier)
        .bind(a.created_at)
        .bind(a.expires_at)
        .bind(&a.remembered_subject)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The authorization an upstream callback belongs to, used once: a second callback
    /// with the same state finds nothing. Expired ones are not returned.
    pub async fn take_authorization_by_state(
        &self,
        upstream_state: &str,
        now: i64,
    ) -> sqlx::Result<Option<Authorization>> {
        sqlx::query_as(
            "UPDATE authorizations SET status = $3
             WHERE upstream_state = $1 AND status = $4 AND expires_at > $2
             RETURNING *",
        )
        .bind(upstream_state)
        .bind(now)
        .bind(FlowStatus::Done.as_str())
        .bind(FlowStatus::Upstream.as_str())
        .fetch_optional(self.writer())
        .await
    }

    /// Record a JWT assertion (by its issuer and `jti`) as used; false when it was
    /// used before (a replay), here or on another instance.
    pub async fn use_assertion(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO used_assertions (issuer, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, jti) DO NOTHING",
        )
        .bind(issuer)
        .bind(jti)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Delete authorizations, refresh tokens and used assertions past their expiry.
    pub async fn purge_expired(&self, now: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM authorizations WHERE expires_at < $1")
            .bind(now - 3600)
            .execute(self.writer())
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        sqlx::query("DELETE FROM used_assertions WHERE expires_at < $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn insert_grant(&self, g: &Grant) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO grants (id, client_id, provider, subject, claims, scope, resource,
               redirect_uri, code_challenge, code_hash, code_expires_at, code_used_at,
               upstream_tokens, created_at, revoked_at, claims_checked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.provider)
        .bind(&g.subject)
        .bind(&g.claims)
        .bind(&g.scope)
        .bind(&g.resource)
        .bind(&g.redirect_uri)
        .bind(&g.code_challenge)
        .bind(&g.code_hash)
        .bind(g.code_expires_at)
        .bind(g.code_used_at)
        .bind(&g.upstream_tokens)
        .bind(g.created_at)
        .bind(g.revoked_at)
        .bind(g.claims_checked_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn grant(&self, id: &str) -> sqlx::Result<Option<Grant>> {
        sqlx::query_as("SELECT * FROM grants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await
    }

    /// Redeem an authorization code, once. A second redemption revokes the grant
    /// (OAuth 2.1 4.1.3: tokens issued from a replayed code must be revoked).
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> sqlx::Result<Result<Grant, RedeemError>> {
        let redeemed: Option<Grant> = sqlx::query_as(
            "UPDATE grants SET code_used_at = $1
             WHERE code_hash = $2 AND code_used_at IS NULL AND revoked_at IS NULL
             RETURNING *",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(self.writer())
        .await?;
        if let Some(grant) = redeemed {
            if grant.code_expires_at <= now {
                self.revoke_grant(&grant.id, now).await?;
                return Ok(Err(RedeemError::Expired));
            }
            return Ok(Ok(grant));
        }
        let existing: Option<Grant> = sqlx::query_as("SELECT * FROM grants WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(self.reader())
            .await?;
        Ok(Err(match existing {
            None => RedeemError::Unknown,
            Some(grant) => {
                self.revoke_grant(&grant.id, now).await?;
                RedeemError::Replayed { grant_id: grant.id }
            }
        }))
    }

    /// Revoke a grant: its refresh tokens and the access tokens it issued stop working.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> sqlx::Result<()> {
        self.grant_changed();
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(self.writer())
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = $1 AND used_at IS NULL")
            .bind(grant_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// New claims for a grant, confirmed by the upstream at `now`.
    pub async fn update_grant_claims(
        &self,
        grant_id: &str,
        claims: &str,
        now: i64,
    ) -> sqlx::Result<()> {
        self.grant_changed();
        sqlx::query("UPDATE grants SET claims = $1, claims_checked_at = $2 WHERE id = $3")
            .bind(claims)
            .bind(now)
            .bind(grant_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Whether a grant exists and is not revoked (access token validation).
    pub async fn grant_is_active(&self, grant_id: &str) -> sqlx::Result<bool> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT revoked_at FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(self.reader())
                .await?;
        Ok(matches!(row, Some((None,))))
    }

    /// Take the lease on refreshing a grant's upstream tokens until `until`, unless
    /// another instance holds an unexpired one.
    pub async fn take_refresh_lease(
        &self,
        grant_id: &str,
        now: i64,
        until: i64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE grants SET refresh_lease_until = $1
             WHERE id = $2 AND (refresh_lease_until IS NULL OR refresh_lease_until <= $3)",
        )
        .bind(until)
        .bind(grant_id)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn release_refresh_lease(&self, grant_id: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE grants SET refresh_lease_until = NULL WHERE id = $1")
            .bind(grant_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Swap the upstream tokens if they are still `old`: two instances refreshing at
    /// once keep one result. False when another got there first.
    pub async fn replace_upstream_tokens(
        &self,
        grant_id: &str,
        old: &str,
        new: &str,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE grants SET upstream_tokens = $1 WHERE id = $2 AND upstream_tokens = $3",
        )
        .bind(new)
        .bind(grant_id)
        .bind(old)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_refresh_token(
        &self,
        token_hash: &str,
        grant_id: &str,
        now: i64,
        expires_at: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(grant_id)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The grant of a live refresh token, without using it: a request is checked in
    /// full before its token is spent (see [`Store::rotate_refresh_token`]). Presenting
    /// a token that was used before revokes its whole family (the grant), since one of
    /// the two presenters is not the rightful client.
    pub async fn refresh_token_grant_live(
        &self,
        token_hash: &str,
        now: i64,
    ) -> sqlx::Result<Result<Grant, RedeemError>> {
        let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT grant_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await?;
        let Some((grant_id, expires_at, used_at)) = row else {
            return Ok(Err(RedeemError::Unknown));
        };
        if used_at.is_some() {
            self.revoke_grant(&grant_id, now).await?;
            return Ok(Err(RedeemError::Replayed { grant_id }));
        }
        if expires_at <= now {
            return Ok(Err(RedeemError::Expired));
        }
        match self.grant(&grant_id).await? {
            Some(grant) if grant.revoked_at.is_none() => Ok(Ok(grant)),
            _ => Ok(Err(RedeemError::Revoked)),
        }
    }

    /// Spend a refresh token and issue its successor, in one transaction. False when
    /// the token was spent meanwhile (a concurrent use): the caller treats that as
    /// reuse.
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor_hash: &str,
        grant_id: &str,
        now: i64,
        successor_expires_at: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.writer().begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1
             WHERE token_hash = $2 AND grant_id = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .bind(grant_id)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(successor_hash)
        .bind(grant_id)
        .bind(now)
        .bind(successor_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The grant a refresh token belongs to, without using it (revocation).
    pub async fn refresh_token_grant(&self, token_hash: &str) -> sqlx::Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT grant_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.reader())
                .await?;
        Ok(row.map(|r| r.0))
    }
}
