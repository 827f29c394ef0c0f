-- 004: the smart-protection look-up table (R2.1): SHA-256 digests of known-malicious content and
-- their threat names, served by parent/sps and filled by `portcullis sps import`.

CREATE TABLE sps_hashes (
    sha256    bytea PRIMARY KEY CHECK (length(sha256) = 32),
    name      text NOT NULL,
    added_at  timestamptz DEFAULT now()
);
