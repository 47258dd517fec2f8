-- Collector agents and idempotent inventory batches.
--
-- A collector is created by an administrator with a one-time registration code (only its
-- SHA-256 is kept, until it is used or expires); the agent exchanges the code for a `collector`
-- API key (`key_id`). `targets` is the JSON array of what the collector collects (kind,
-- credential, regions, interval …); `last_job` the JSON of the latest job result it reported.
CREATE TABLE collectors (
    instance_id       TEXT NOT NULL REFERENCES instances (id),
    id                TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    targets           TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    code_hash         TEXT,
    code_expires_at   TEXT,
    key_id            TEXT,
    registered_at     TEXT,
    last_heartbeat_at TEXT,
    agent_version     TEXT,
    host_name         TEXT,
    last_job          TEXT,
    PRIMARY KEY (instance_id, id)
);
-- The registration exchange finds a collector by its code alone (it does not know the instance).
CREATE UNIQUE INDEX collectors_by_code ON collectors (code_hash);

-- Inventory batches pushed with an idempotency key (`batch_id`), recorded in the transaction
-- that writes their resources: a retried batch finds its row and is answered from it, never
-- applied twice. `rejected` is the JSON array of records refused in the first answer.
CREATE TABLE inventory_batches (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    batch_id    TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    stored      BIGINT NOT NULL,
    duplicates  BIGINT NOT NULL,
    rejected    TEXT NOT NULL,
    PRIMARY KEY (instance_id, batch_id)
);
