-- 011: people who administer the cluster through the REST API and the web console (issue 6):
-- users with one role each, and their credentials — console sessions and bearer tokens for
-- scripts — of which only a SHA-256 is kept. Passwords are argon2id (libsodium crypto_pwhash_str).
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role        text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    pw_hash     text NOT NULL,
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_login  timestamptz
);

CREATE TABLE api_credentials (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('session', 'token')),
    token_hash  bytea NOT NULL UNIQUE,       -- SHA-256 of the secret
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    last_used   timestamptz
);
CREATE INDEX api_credentials_user_idx ON api_credentials (user_id);
CREATE INDEX api_credentials_expires_idx ON api_credentials (expires_at);
