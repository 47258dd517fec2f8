-- The dashboard: sessions that survive a restart, and the summary columns of report listings
-- (PostgreSQL twin of sqlite/0008_dashboard.sql).

-- One row per signed-in dashboard session. The browser holds a random 256-bit id; only its
-- SHA-256 is stored, so the table does not hand out sessions to whoever reads it. The key itself
-- is never stored: each request re-reads the key row (revocation also deletes its sessions).
CREATE TABLE ui_sessions (
    id_hash     TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id),
    key_id      TEXT NOT NULL,
    -- The token every state-changing form carries (useless without the session cookie).
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX ui_sessions_by_key ON ui_sessions (instance_id, key_id);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);

-- What a list of reports shows, copied out of the roll-up when the report is stored, so that
-- listing an attachment's reports (the score trend) does not read whole roll-ups.
ALTER TABLE reports
    ADD COLUMN score_passed BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN score_total BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN controls_failing BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN evaluation_count BIGINT NOT NULL DEFAULT 0;
UPDATE reports SET
    score_passed = COALESCE((body::jsonb #>> '{rollup,score,passed}')::BIGINT, 0),
    score_total = COALESCE((body::jsonb #>> '{rollup,score,total_count}')::BIGINT, 0),
    controls_failing = COALESCE((body::jsonb #>> '{rollup,controls_summary,stats,not_compliant_count}')::BIGINT, 0),
    evaluation_count = COALESCE((body::jsonb #>> '{rollup,evaluations_summary,total_count}')::BIGINT, 0);
