-- Hardening of the authorization server (sign-ins bound to their browser, claims that
-- follow the upstream, retirable keys, bounded registrations, remembered consent keyed
-- on user, client and redirect URI).

-- When the grant's claims were last confirmed by the upstream (NULL: at creation).
ALTER TABLE grants ADD COLUMN claims_checked_at BIGINT;

-- Set when the browser skipped the consent page because this user approved this
-- client and redirect URI before: the callback then requires that same user.
ALTER TABLE authorizations ADD COLUMN remembered_subject TEXT;

-- A key stops signing when a newer one is made (deactivated) and stops verifying when
-- retired, by the operator or once every token it signed has expired.
ALTER TABLE signing_keys ADD COLUMN deactivated_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN retired_at BIGINT;

-- `dcr` (self-registered) or `operator`; self-registered clients never used are purged.
ALTER TABLE clients ADD COLUMN source TEXT NOT NULL DEFAULT 'dcr';
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
UPDATE clients SET source = 'operator' WHERE metadata LIKE '%"registered_by":"operator"%';
CREATE INDEX clients_unused ON clients (source, last_used_at, created_at);

-- Remembered consent, per browser, client, redirect URI and the user who signed in.
DROP TABLE consents;
CREATE TABLE remembered_consents (
    browser_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    subject TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (browser_hash, client_id, redirect_uri)
);
