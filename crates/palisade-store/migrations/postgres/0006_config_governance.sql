-- Configuration governance: the admission decision log (PostgreSQL twin of sqlite/0006_config_governance.sql).
--
-- Rules, templates and their attachments are versioned documents (kinds `config.rule`,
-- `config.rule_attachment`, `config.template`, `config.template_attachment`); only the decisions
-- need a table, because they are many and listed with filters.
--
-- One row per decision. `id` is a UUIDv7, so id order is time order and listings page by id
-- (newest first). The columns are what listings filter on; `body` is the whole decision (the
-- resource's envelope, violations with details, the templates' patch).
CREATE TABLE admission_decisions (
    instance_id   TEXT NOT NULL REFERENCES instances (id),
    id            TEXT NOT NULL,
    decided_at    TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    source        TEXT NOT NULL,
    operation     TEXT NOT NULL,
    -- 1 allowed, 0 denied (BIGINT rather than BOOLEAN: one statement text serves both backends).
    allowed       BIGINT NOT NULL,
    account_id    TEXT NOT NULL,
    service_name  TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX admission_decisions_by_outcome ON admission_decisions (instance_id, allowed, id);
CREATE INDEX admission_decisions_by_resource ON admission_decisions (instance_id, resource_id, id);

-- The rules each decision found violated, so "which decisions did rule X deny" is an index scan.
CREATE TABLE admission_decision_rules (
    instance_id TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    PRIMARY KEY (instance_id, rule_id, decision_id)
);
