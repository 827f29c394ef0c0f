-- 008: the end of a stored file (R5.5, R5.8, R5.4). A child reports StoredRemoved when a
-- quarantined or archived file is gone — purged over quota, past retention, deleted, released
-- or found missing by a reconciliation. The index row stays, marked, as the record of what
-- happened; searches leave removed rows out unless asked for them (--state removed).
ALTER TABLE stored_messages ADD COLUMN removed_at timestamptz,
                            ADD COLUMN removed_reason text;

-- The removal is kept on its own too: the manager's spool and the scan service's are shipped
-- independently, so a removal may arrive before the row it removes (a file stored and purged
-- within one report window); the stored row is then marked as it is inserted.
CREATE TABLE stored_removals (
    child_id    bigint NOT NULL,
    kind        text NOT NULL,
    file_id     text NOT NULL,
    removed_at  timestamptz NOT NULL,
    reason      text NOT NULL,
    PRIMARY KEY (child_id, file_id)
);
CREATE INDEX stored_messages_live_idx ON stored_messages (kind, received_at, id)
    WHERE removed_at IS NULL;
