-- 001: the cluster's core: children and their enrolment, settings and configuration versions,
-- events. Later migrations add policy, stores, tracking and the admin interfaces.

CREATE TABLE children (
    id                      bigserial PRIMARY KEY,
    name                    text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    public_key              text UNIQUE CHECK (public_key IS NULL OR length(public_key) = 40),
    enrolment               text NOT NULL CHECK (enrolment IN ('pending', 'enrolled')),
    address                 text,
    software_version        text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    enrolled_at             timestamptz,
    connected               boolean NOT NULL DEFAULT false,
    last_seen               timestamptz,
    applied_config_version  bigint,
    config_error            text,
    last_health             jsonb,
    last_health_at          timestamptz
);

-- One-time enrolment tokens: only a SHA-256 of the token is kept.
CREATE TABLE enrol_tokens (
    id          bigserial PRIMARY KEY,
    child_name  text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- Overrides only: a setting absent here has the default of the settings table in the code.
CREATE TABLE settings (
    section     text NOT NULL,
    name        text NOT NULL,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (section, name)
);

CREATE TABLE config_versions (
    version     bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL
);
INSERT INTO config_versions (reason) VALUES ('initial configuration');

CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    category    text NOT NULL,            -- 'system', 'cluster', 'policy', ...
    severity    text NOT NULL CHECK (severity IN ('info', 'warning', 'error')),
    child_id    bigint REFERENCES children (id) ON DELETE SET NULL,
    message     text NOT NULL
);
CREATE INDEX events_at_idx ON events (at);
CREATE INDEX events_category_at_idx ON events (category, at);
