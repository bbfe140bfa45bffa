//! An approved authorization request's round trip through the upstream, in the states
//! the types allow: [`SignIns::depart`] stores it with the round trip's fresh secrets
//! (the browser goes upstream), [`SignIns::returned`] takes it back at most once (the
//! upstream's callback, whatever its outcome), and only what returned becomes a grant
//! (`Grants::create`).

use crate::clock::Clock;
use crate::crypto::{self, Sealer};
use crate::secret::Secret;
use crate::store::{Authorization, Store};
use std::sync::Arc;

/// What the user approved: the client's request, checked at `/authorize`.
pub struct Approved {
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub client_state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub provider: String,
    /// The hash of the browser's id: consent is remembered per browser.
    pub browser_hash: String,
    pub expires_at: i64,
    /// Set when consent was remembered rather than given: the user who gave it, who
    /// must be the one signing in.
    pub remembered_subject: Option<String>,
}

/// The secrets of one round trip to the upstream, fresh for each: the state that
/// finds the request again, the OIDC nonce, and authhost's own PKCE pair.
pub struct RoundTrip {
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    verifier: Secret,
}

impl RoundTrip {
    pub fn new() -> RoundTrip {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        RoundTrip {
            state: crypto::random_token(),
            nonce: crypto::random_token(),
            code_challenge: challenge.as_str().to_string(),
            verifier: Secret::new(verifier.secret().as_str()),
        }
    }
}

impl Default for RoundTrip {
    fn default() -> Self {
        RoundTrip::new()
    }
}

/// A request back from the upstream, used up: it cannot return again.
pub struct Returned {
    pub request: Authorization,
    /// The PKCE verifier of the round trip (`None` if it could not be unsealed).
    pub code_verifier: Option<Secret>,
    pub nonce: String,
}

pub struct SignIns {
    store: Store,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
}

impl SignIns {
    pub fn new(store: Store, sealer: Arc<Sealer>, clock: Arc<dyn Clock>) -> SignIns {
        SignIns {
            store,
            sealer,
            clock,
        }
    }

    /// The browser goes upstream: keep the request with the round trip's secrets (the
    /// verifier sealed). False when this request departed already (a form sent twice).
    pub async fn depart(&self, approved: Approved, trip: &RoundTrip) -> sqlx::Result<bool> {
        self.store
            .insert_authorization(&Authorization {
                id: approved.id,
                client_id: approved.client_id,
                redirect_uri: approved.redirect_uri,
                client_state: approved.client_state,
                code_challenge: approved.code_challenge,
                scope: approved.scope,
                resource: approved.resource,
                provider: approved.provider,
                browser_hash: approved.browser_hash,
                upstream_state: Some(trip.state.clone()),
                upstream_nonce: Some(trip.nonce.clone()),
                upstream_verifier: Some(self.sealer.seal(trip.verifier.expose().as_bytes())),
                created_at: self.clock.now(),
                expires_at: approved.expires_at,
                remembered_subject: approved.remembered_subject,
            })
            .await
    }

    /// The upstream sent the browser back with `upstream_state`: the request, taken
    /// now, before anything else, so a callback that fails later cannot be replayed.
    /// `None` when it is unknown, expired, or returned before.
    pub async fn returned(&self, upstream_state: &str) -> sqlx::Result<Option<Returned>> {
        let Some(request) = self
            .store
            .take_authorization_by_state(upstream_state, self.clock.now())
            .await?
        else {
            return Ok(None);
        };
        let code_verifier = request
            .upstream_verifier
            .as_deref()
            .and_then(|sealed| self.sealer.open(sealed).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Secret::new);
        let nonce = request.upstream_nonce.clone().unwrap_or_default();
        Ok(Some(Returned {
            request,
            code_verifier,
            nonce,
        }))
    }
}
