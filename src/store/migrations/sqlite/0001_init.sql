-- Times are integer milliseconds since the Unix epoch (UTC), the same on both backends.

CREATE TABLE tenants (
    location_id TEXT PRIMARY KEY,
    holded_key  BLOB,              -- encrypted (AES-256-GCM) with ENCRYPTION_KEY
    settings    TEXT NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL DEFAULT 'active',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    owner_id    TEXT PRIMARY KEY,
    owner_type  TEXT NOT NULL CHECK (owner_type IN ('location', 'company')),
    access      BLOB NOT NULL,     -- encrypted
    refresh     BLOB,              -- encrypted
    expires_at  INTEGER NOT NULL,
    scopes      TEXT NOT NULL DEFAULT '',
    version     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    location_id TEXT NOT NULL,
    type        TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX events_received_at ON events (received_at);

CREATE TABLE work (
    id          INTEGER PRIMARY KEY,
    location_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ghl_id      TEXT NOT NULL,
    parent_id   TEXT,              -- the GHL contact of a task, note or appointment
    generation  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    lease_token TEXT,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    deleted     INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (location_id, kind, ghl_id)
);
CREATE INDEX work_due ON work (state, due_at);

CREATE TABLE links (
    location_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ghl_id      TEXT NOT NULL,
    parent_id   TEXT,              -- the GHL contact of a task, note or appointment
    holded_id   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    synced_at   INTEGER NOT NULL,
    PRIMARY KEY (location_id, kind, ghl_id)
);
CREATE INDEX links_parent ON links (location_id, parent_id);

CREATE TABLE sweeps (
    location_id TEXT PRIMARY KEY,
    watermark   INTEGER NOT NULL
);

-- Where a `backfill` of a location stands, so a rerun resumes after the last queued page.
CREATE TABLE backfills (
    location_id TEXT PRIMARY KEY,
    cursor      TEXT,              -- JSON search cursor
    pages       INTEGER NOT NULL,
    contacts    INTEGER NOT NULL,
    finished    BOOLEAN NOT NULL,
    updated_at  INTEGER NOT NULL
);
