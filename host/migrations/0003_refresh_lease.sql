-- While one instance refreshes a grant's upstream tokens, the others wait for it, so a
-- rotating refresh token is spent once (unix seconds; NULL when nobody refreshes).
ALTER TABLE grants ADD COLUMN refresh_lease_until BIGINT;
