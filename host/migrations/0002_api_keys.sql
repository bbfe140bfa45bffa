-- API keys for service accounts: only the sha256 of the key is kept.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    -- The MCP server (its `mcp_servers` name) the key is for, or `*` for all.
    server TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- JSON arrays.
    groups TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
