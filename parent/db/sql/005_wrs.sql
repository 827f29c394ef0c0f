-- 005: web reputation (R3.2): URL and domain block-lists filled by `portcullis wrs import` and
-- pushed to the scan services in the configuration snapshot (ConfigSnapshot.wrs).

CREATE TABLE wrs_entries (
    kind      text NOT NULL CHECK (kind IN ('url', 'domain')),
    pattern   text NOT NULL,
    level     int NOT NULL CHECK (level BETWEEN 1 AND 100),
    category  text NOT NULL,
    added_at  timestamptz DEFAULT now(),
    PRIMARY KEY (kind, pattern)
);
