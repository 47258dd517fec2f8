-- Inventory: the latest configuration of every resource, its history, and quarantined records.

-- The latest version of each resource; envelope fields are columns so inventory queries and
-- scope resolution filter in SQL.
CREATE TABLE resources (
    instance_id    TEXT NOT NULL REFERENCES instances (id),
    id             TEXT NOT NULL,
    environment    TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    service_name   TEXT NOT NULL,
    resource_kind  TEXT NOT NULL,
    region         TEXT,
    resource_group TEXT,
    name           TEXT,
    body           TEXT NOT NULL,
    collected_at   TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX resources_by_kind ON resources (instance_id, service_name, resource_kind);
CREATE INDEX resources_by_account ON resources (instance_id, environment, account_id);

-- Tags, one row each, so `tag=key:value` filters use an index.
CREATE TABLE resource_tags (
    instance_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    tag_key     TEXT NOT NULL,
    tag_value   TEXT NOT NULL,
    PRIMARY KEY (instance_id, resource_id, tag_key)
);
CREATE INDEX resource_tags_by_value ON resource_tags (instance_id, tag_key, tag_value);

-- Every version ever pushed: idempotency on (id, collected_at) and the history drift reads.
CREATE TABLE resource_versions (
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    id           TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, id, collected_at)
);

-- Records that failed validation, kept so that nothing sent is lost.
CREATE TABLE quarantine (
    instance_id TEXT NOT NULL REFERENCES instances (id),
    id          TEXT NOT NULL,
    source      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    reason      TEXT NOT NULL,
    record      TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);
CREATE INDEX quarantine_by_time ON quarantine (instance_id, source, received_at);
