-- 003: policy (R5.1) and its areas (R5.2), owned by the parent and pushed in the configuration.
-- Rules are kept densely ordered 1..n by the admin operations (parent/admin/admin_policy.c),
-- which validate the whole set with policy_compile() before any row changes.

CREATE TABLE areas (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 127),
    kind            text NOT NULL CHECK (kind IN ('quarantine', 'archive')),
    retention_days  integer NOT NULL DEFAULT 15 CHECK (retention_days BETWEEN 1 AND 60),
    created_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO areas (name, kind) VALUES ('Default quarantine', 'quarantine'),
                                      ('Default archive', 'archive');

CREATE TABLE policy_rules (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 127),
    -- 1..n; deferrable so that a renumbering UPDATE may pass through duplicates
    position    integer NOT NULL CHECK (position >= 1),
    scope       text NOT NULL DEFAULT 'any' CHECK (scope IN ('any', 'inbound', 'outbound')),
    domains     text[] NOT NULL DEFAULT '{}',
    match       text NOT NULL DEFAULT 'all' CHECK (match IN ('all', 'any')),
    conditions  jsonb NOT NULL DEFAULT '[]',     -- [{"kind", "value", "negate"}] in order
    actions     jsonb NOT NULL,                  -- [{"kind", "arg"}] in order
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policy_rules_position_key UNIQUE (position) DEFERRABLE INITIALLY IMMEDIATE,
    CHECK (jsonb_typeof(conditions) = 'array' AND jsonb_typeof(actions) = 'array')
);

-- The default policy (R5.1): viruses and scan exceptions go to the default quarantine. The
-- default anti-spam rule comes with the spam verdict.
INSERT INTO policy_rules (name, position, conditions, actions) VALUES
    ('Viruses', 1,
     '[{"kind": "virus_found", "value": "", "negate": false}]',
     '[{"kind": "quarantine", "arg": "Default quarantine"}]'),
    ('Scan exceptions', 2,
     '[{"kind": "scan_exception", "value": "", "negate": false}]',
     '[{"kind": "quarantine", "arg": "Default quarantine"}]');

INSERT INTO config_versions (reason) VALUES ('default policy and areas');
