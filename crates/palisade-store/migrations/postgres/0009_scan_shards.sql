-- Scans split into shards (issue 11; PostgreSQL twin of sqlite/0009_scan_shards.sql): a run
-- records what the scan evaluates (a snapshot of its profile, libraries, rules, scopes and
-- attestations, so every worker builds the same plan) and its shards, ranges of resource ids
-- of one (service, kind) that any server process may evaluate. A shard's evaluations and its
-- roll-up counters are written in one transaction with its `done` mark; the report is
-- assembled from the counters, in shard order, once all are done.

CREATE TABLE scan_runs (
    instance_id   TEXT NOT NULL REFERENCES instances (id),
    report_id     TEXT NOT NULL,
    attachment_id TEXT NOT NULL,
    scan_type     TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    -- `running` until the report is stored, then `assembled` (or `abandoned`, with a reason).
    status        TEXT NOT NULL,
    shards        BIGINT NOT NULL,
    -- The plan's inputs as JSON; emptied once the run ends.
    input         TEXT NOT NULL,
    reason        TEXT,
    PRIMARY KEY (instance_id, report_id)
);
CREATE INDEX scan_runs_by_status ON scan_runs (status, instance_id);

CREATE TABLE scan_shards (
    instance_id   TEXT NOT NULL,
    report_id     TEXT NOT NULL,
    shard         BIGINT NOT NULL,
    service_name  TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    -- Resource ids greater than `after_id` (none: from the first) up to `until_id` (none: to
    -- the last).
    after_id      TEXT,
    until_id      TEXT,
    -- `pending` or `done`; the roll-up counters of a done shard (a PartialRollup, JSON).
    status        TEXT NOT NULL,
    partial       TEXT,
    PRIMARY KEY (instance_id, report_id, shard)
);
CREATE INDEX scan_shards_pending ON scan_shards (status, instance_id, report_id);
