-- Machine clients (the client_credentials grant), which only the operator creates:
-- what their tokens may be for, as JSON {"resources": [...], "scopes": [...],
-- "groups": [...]}; NULL for every other client.
ALTER TABLE clients ADD COLUMN machine TEXT;
-- The public keys of a client that authenticates with private_key_jwt (RFC 7523), as a
-- JWK Set (JSON); such a client has no secret.
ALTER TABLE clients ADD COLUMN jwks TEXT;

-- Client assertions already used (RFC 7523 3: a `jti` is used once), kept until they
-- expire; shared by every instance.
CREATE TABLE client_assertions (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
