-- Foundation: tenants, their API keys, and versioned JSON documents.
-- Timestamps are fixed-width RFC 3339 text in UTC (see src/time.rs) so text order is time order.

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Keys are looked up by id on every request; only a hash of the secret is kept.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    -- 1 for the key printed at first start, which may also manage instances.
    operator    BIGINT NOT NULL DEFAULT 0,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_by_instance ON api_keys (instance_id, created_at);

-- Configuration objects of the APIs (profiles, scopes, rules …) as JSON, one row per object.
-- `version` is the ETag used by If-Match; the primary key makes every lookup instance-scoped.
CREATE TABLE documents (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     BIGINT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, kind, id)
);
