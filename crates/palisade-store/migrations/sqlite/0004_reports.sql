-- Posture reports and their evaluations (one row per rule × resource of a scan).

CREATE TABLE reports (
    instance_id   TEXT NOT NULL REFERENCES instances (id),
    id            TEXT NOT NULL,
    attachment_id TEXT NOT NULL,
    profile_id    TEXT NOT NULL,
    scan_type     TEXT NOT NULL,
    created_on    TEXT NOT NULL,
    -- The SCC report with its roll-up (controls, resources, score), as JSON.
    body          TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX reports_by_attachment ON reports (instance_id, attachment_id, created_on);

CREATE TABLE evaluations (
    instance_id TEXT NOT NULL,
    report_id   TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    -- Details: properties checked with expected and found values, and the reason.
    body        TEXT NOT NULL,
    PRIMARY KEY (instance_id, report_id, rule_id, resource_id)
);
CREATE INDEX evaluations_by_status ON evaluations (instance_id, report_id, status);
CREATE INDEX evaluations_by_resource ON evaluations (instance_id, report_id, resource_id);
