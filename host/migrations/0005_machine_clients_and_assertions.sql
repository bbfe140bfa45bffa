-- Machine clients (the client_credentials grant), which only the operator creates:
-- what their tokens may be for, as JSON {"resources": [...], "scopes": [...],
-- "groups": [...]}; NULL for every other client.
ALTER TABLE clients ADD COLUMN machine TEXT;
-- The public keys of a client that authenticates with private_key_jwt (RFC 7523), as a
-- JWK Set (JSON); such a client has no secret.
ALTER TABLE clients ADD COLUMN jwks TEXT;

-- JWT assertions already used, by issuer and `jti` (RFC 7523 3: each is used once):
-- clients' own assertions (their issuer is the client id) and enterprise identity
-- providers' ID-JAGs. Kept until they expire; shared by every instance.
CREATE TABLE used_assertions (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
