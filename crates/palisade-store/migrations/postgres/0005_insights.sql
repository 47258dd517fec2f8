-- Security insights ingest (SQLite twin: sqlite/0005_insights.sql; keep them in step).
-- Timestamps are fixed-width RFC 3339 text in UTC (see src/time.rs) so text order is time order.

-- The durable journal of accepted ingest batches (activity events, network flows). A batch is
-- written here before the API answers 2xx; the insights worker processes pending batches in
-- order and marks one processed in the same transaction that records its findings and the
-- stream's detector state, so a batch counts exactly once even across crashes.
CREATE TABLE ingest_batches (
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    id           TEXT NOT NULL,
    -- 'activity' or 'network'.
    stream       TEXT NOT NULL,
    -- The name the sender gave the batch (a file name), for messages.
    source       TEXT NOT NULL,
    -- Who sent it: the API key id.
    submitted_by TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    -- 'pending', 'processed' or 'failed'.
    status       TEXT NOT NULL,
    -- Records accepted, and records rejected at decoding (reported in the 2xx answer).
    records      BIGINT NOT NULL,
    rejected     BIGINT NOT NULL,
    -- The accepted records, decoded, as JSON Lines; emptied once the batch is processed.
    payload      TEXT,
    -- Processing options as JSON (e.g. close the detector windows afterwards).
    options      TEXT NOT NULL,
    findings     BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    processed_at TEXT,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX ingest_batches_by_status ON ingest_batches (status, stream, received_at);
CREATE INDEX ingest_batches_by_stream ON ingest_batches (instance_id, stream, received_at);

-- Detector state of a stream (correlation windows), saved with the batch that changed it.
CREATE TABLE insight_state (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    stream      TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, stream)
);

-- Threat-intelligence feeds of an instance, as uploaded (text, CSV or STIX 2.1).
CREATE TABLE intel_feeds (
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    name         TEXT NOT NULL,
    -- The feed spec (format, default category and confidence) as JSON.
    spec         TEXT NOT NULL,
    entries      BIGINT NOT NULL,
    rejected     BIGINT NOT NULL,
    content      TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (instance_id, name)
);
