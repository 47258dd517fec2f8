-- Findings and notifications (PostgreSQL twin of sqlite/0002_findings.sql; keep them in step):
-- findings in the Grafeas model of IBM's Findings v1; notification channels, signing keys and
-- the durable delivery queue that is also the delivery log.
-- Timestamps are fixed-width RFC 3339 text in UTC (see src/time.rs) so text order is time order.

-- A provider is registered the first time a note or occurrence names it.
CREATE TABLE finding_providers (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, account_id, id)
);

-- Notes: one JSON body per note, validated by the API for its kind before it gets here.
CREATE TABLE finding_notes (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    account_id  TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, account_id, provider_id, id)
);

-- Occurrences: the columns lists filter on are real columns (with indexes), the rest is the
-- JSON body. (account, provider, id) is the deduplication key: reporting it again raises
-- `occurrence_count` and `last_seen` instead of adding a row. `seq` gives listings a stable
-- tie-break for keyset pagination. `notify_pending` is the notification outbox: it is set in
-- the same statement that creates or reopens a finding (`opened_at` says when), so a crash
-- cannot lose an alert.
CREATE TABLE finding_occurrences (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id      TEXT NOT NULL REFERENCES instances (id),
    account_id       TEXT NOT NULL,
    provider_id      TEXT NOT NULL,
    id               TEXT NOT NULL,
    note_provider_id TEXT NOT NULL,
    note_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    severity         TEXT,
    certainty        TEXT,
    resource         TEXT,
    status           TEXT NOT NULL,
    status_reason    TEXT,
    suppressed_until TEXT,
    occurrence_count BIGINT NOT NULL,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    opened_at        TEXT NOT NULL,
    notify_pending   BIGINT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    body             TEXT NOT NULL
);
CREATE UNIQUE INDEX finding_occurrences_key ON finding_occurrences (instance_id, account_id, provider_id, id);
CREATE INDEX finding_occurrences_by_note ON finding_occurrences (instance_id, account_id, note_provider_id, note_id, seq);
CREATE INDEX finding_occurrences_recent ON finding_occurrences (instance_id, last_seen, seq);
CREATE INDEX finding_occurrences_by_provider ON finding_occurrences (instance_id, provider_id, last_seen, seq);
CREATE INDEX finding_occurrences_by_severity ON finding_occurrences (instance_id, severity, last_seen, seq);
CREATE INDEX finding_occurrences_by_status ON finding_occurrences (instance_id, status, last_seen, seq);
CREATE INDEX finding_occurrences_by_resource ON finding_occurrences (instance_id, resource, last_seen, seq);
CREATE INDEX finding_occurrences_notify ON finding_occurrences (notify_pending) WHERE notify_pending = 1;
CREATE INDEX finding_occurrences_suppressed ON finding_occurrences (suppressed_until) WHERE status = 'suppressed';

-- Notification channels of an account (IBM allows 15 per account).
CREATE TABLE notification_channels (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, account_id, id)
);

-- The RS256 key pair that signs an instance's webhook bodies; made on first use.
CREATE TABLE notification_signing_keys (
    instance_id     TEXT PRIMARY KEY REFERENCES instances (id),
    private_key_pem TEXT NOT NULL,
    public_key_pem  TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

-- The delivery queue and log in one: a row is queued (`pending`), retried with backoff, and ends
-- `delivered` or `failed`. The unique key deduplicates: one alert per channel and finding event.
-- `next_attempt_at` doubles as a lease while a worker delivers, so two workers never send twice.
CREATE TABLE notification_deliveries (
    id              TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL REFERENCES instances (id),
    account_id      TEXT NOT NULL,
    channel_id      TEXT NOT NULL,
    dedup_key       TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_error      TEXT,
    delivered_at    TEXT,
    created_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX notification_deliveries_dedup ON notification_deliveries (instance_id, channel_id, dedup_key);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);
CREATE INDEX notification_deliveries_log ON notification_deliveries (instance_id, created_at, id);
