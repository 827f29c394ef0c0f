-- 009: commands to children (R7.4) and the audit log of administrators' operations (R5.4).
-- A command row is the whole life of one request: the CLI (or the API, or the parent's own
-- scheduler) inserts it 'pending' and NOTIFYs portcullis_command; the parent daemon sends it
-- to the child ('sent') or fails it at once when the child is down; the child's answer makes
-- it 'done' or 'failed'; a passed deadline makes it 'timeout'. Each change of state to a
-- final one is NOTIFYd on portcullis_command_done with the id as payload.
CREATE TABLE commands (
    id           bigserial PRIMARY KEY,
    child_id     bigint NOT NULL REFERENCES children (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind ~ '^[a-z_]{1,32}$'),
    args         jsonb NOT NULL DEFAULT '{}',   -- file_id, store, area, bucket, offset, …
    actor        text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'sent', 'done', 'failed', 'timeout')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    deadline     timestamptz NOT NULL,
    finished_at  timestamptz,
    error        text,
    detail       jsonb,                       -- the child's account of what it did
    data         bytea,                       -- fetch: the chunk (cleared once read)
    total_size   bigint
);
CREATE INDEX commands_open_idx ON commands (id) WHERE state IN ('pending', 'sent');
CREATE INDEX commands_created_idx ON commands (created_at);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,                    -- OS user of the CLI, 'system' for the parent
    action  text NOT NULL,                    -- e.g. 'quarantine release'
    target  text NOT NULL DEFAULT '',         -- e.g. 'child1:<file_id>' or a child name
    result  text NOT NULL CHECK (result IN ('ok', 'failed')),
    detail  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Index rows made by a reconciliation (a file with no row) take their (epoch, seq) from here.
CREATE SEQUENCE stored_reconcile_seq;

-- The search filters of `quarantine search` (R5.4) that 002 has no index for.
CREATE INDEX stored_messages_rcpt_idx ON stored_messages USING gin (portcullis_lower_array(recipients));
CREATE INDEX stored_messages_rule_idx ON stored_messages (rule, received_at);
CREATE INDEX stored_messages_child_file_idx ON stored_messages (child_id, kind, state);
