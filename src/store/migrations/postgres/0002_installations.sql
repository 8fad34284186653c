-- The PostgreSQL twin of migrations/sqlite/0002_installations.sql: the same tables, columns
-- and constraints. Marketplace installs: installed locations, GHL token rows with a refresh
-- lease, and single-use OAuth nonces. Times are integer milliseconds since the Unix epoch
-- (UTC); every integer is BIGINT so it reads back as i64 like SQLite's INTEGER.
--
-- 0001's `tenants` and `tokens` were never written to (no release used them), so they are
-- recreated with the shape installs need rather than altered column by column.

DROP TABLE tenants;
DROP TABLE tokens;

CREATE TABLE tenants (
    location_id TEXT PRIMARY KEY,
    company_id  TEXT,              -- the agency whose Company token mints this location's tokens
    holded_key  BYTEA,             -- sealed (AES-256-GCM) with ENCRYPTION_KEY
    state       TEXT NOT NULL
                CHECK (state IN ('active', 'awaiting_key', 'needs_reconnect', 'uninstalled')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX tenants_company ON tenants (company_id);

CREATE TABLE tokens (
    owner_type   TEXT NOT NULL CHECK (owner_type IN ('location', 'company')),
    owner_id     TEXT NOT NULL,
    company_id   TEXT,             -- for a location token minted from a Company token
    access       BYTEA NOT NULL,   -- sealed
    refresh      BYTEA,            -- sealed; none for a token minted from a Company token
    expires_at   BIGINT NOT NULL,
    refreshed_at BIGINT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '',
    version      BIGINT NOT NULL DEFAULT 0,    -- bumped by every completed refresh
    lease_until  BIGINT,           -- the refresh lease: one refresh per owner at a time
    lease_token  TEXT,
    PRIMARY KEY (owner_type, owner_id)
);
CREATE INDEX tokens_company ON tokens (company_id);

CREATE TABLE nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX nonces_expires_at ON nonces (expires_at);

-- When the current pending episode of a work row began: webhook hints for a record synced
-- before wait a little for more (coalescing a burst), but never past a bound from here.
ALTER TABLE work ADD COLUMN settle_from BIGINT;
