-- 006: signed component updates (R3.7). Packages live in the database so that the CLI on any
-- host can import them and any parent serves them; `portcullis update import` fills the table,
-- the parent's HTTPS thread streams `package` to the children in 1 MiB slices.

CREATE TABLE components (
    component   text NOT NULL CHECK (component IN ('clamav', 'light')),
    version     text NOT NULL CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    sha256      bytea NOT NULL CHECK (octet_length(sha256) = 32),
    signature   bytea NOT NULL CHECK (octet_length(signature) = 64), -- Ed25519, update key
    size        bigint NOT NULL CHECK (size BETWEEN 1 AND 536870912), -- UPDATE_PKG_MAX
    package     bytea NOT NULL,        -- what was imported; `size` and `sha256` describe it
    files       int NOT NULL DEFAULT 0,
    current     boolean NOT NULL DEFAULT false,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
);
-- Uncompressed out-of-line storage: substring() reads only the slice it is asked for.
ALTER TABLE components ALTER COLUMN package SET STORAGE EXTERNAL;
-- At most one current version per component.
CREATE UNIQUE INDEX components_current ON components (component) WHERE current;

-- What the children need to fetch and trust packages, one row: the update key's public half,
-- the HTTPS server's key pin and base address (written by the parent at start, the key also by
-- the CLI), and the bearer token for downloads (made once, random).
CREATE TABLE update_server (
    id          int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    public_key  bytea CHECK (octet_length(public_key) = 32),
    tls_pin     text NOT NULL DEFAULT '',
    base_url    text NOT NULL DEFAULT '',
    token       text NOT NULL
);
