-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, so the same
-- queries run on both through sqlx's Any driver. Times are unix seconds.

-- Dynamically registered clients (pre-registered ones live in the config file,
-- metadata-document clients in a cache).
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    application_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- An authorization request between /authorize and the upstream callback.
CREATE TABLE authorizations (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    client_state TEXT,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    provider TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    upstream_state TEXT UNIQUE,
    upstream_nonce TEXT,
    upstream_verifier TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- A user's grant to a client: born with an authorization code, carries the refresh
-- token family and the (encrypted) upstream tokens; revoking it ends them all.
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    claims TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    code_hash TEXT UNIQUE,
    code_expires_at BIGINT NOT NULL,
    code_used_at BIGINT,
    upstream_tokens TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);

-- Clients a browser has approved (only consulted when consent.remember is on).
CREATE TABLE consents (
    browser_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (browser_hash, client_id)
);

-- Access token signing keys; the private half encrypted.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active BIGINT NOT NULL
);
