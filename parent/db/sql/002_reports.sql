-- 002: reports from the children's spools (R7.3): message tracking (partitioned by day so that
-- retention drops whole partitions), the quarantine/archive index, and child events. Each
-- record is unique by (child, spool epoch, seq), so a batch sent again changes nothing.

-- lower() of every element: the recipient search is case-insensitive and indexed.
CREATE FUNCTION portcullis_lower_array(a text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(array_agg(lower(x)), '{}') FROM unnest(a) AS x $$;

CREATE TABLE message_log (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    received_at      timestamptz NOT NULL,
    child_id         bigint NOT NULL,          -- no foreign key: the log outlives a removed child
    child            text NOT NULL,            -- its name at the time
    spool_epoch      text NOT NULL,
    seq              bigint NOT NULL,
    msg_id           text NOT NULL,
    message_id       text NOT NULL DEFAULT '',
    queue_id         text NOT NULL DEFAULT '',
    sender           text NOT NULL DEFAULT '',
    recipients       text[] NOT NULL DEFAULT '{}',
    client_addr      text NOT NULL DEFAULT '',
    client_name      text NOT NULL DEFAULT '',
    size             bigint NOT NULL DEFAULT 0,
    verdicts         jsonb NOT NULL DEFAULT '[]',   -- [{"engine", "result", "detail"}]
    rule             text NOT NULL DEFAULT '',
    action           text NOT NULL DEFAULT '',
    subject          text NOT NULL DEFAULT '',
    reply            text NOT NULL DEFAULT '',
    quarantine_area  text NOT NULL DEFAULT '',
    archived_to      text[] NOT NULL DEFAULT '{}',
    ms_receive       integer NOT NULL DEFAULT 0,
    ms_scan          integer NOT NULL DEFAULT 0,
    ms_deliver       integer NOT NULL DEFAULT 0,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (received_at, id),                  -- also the keyset of `log query`
    UNIQUE (child_id, spool_epoch, seq, received_at)
) PARTITION BY RANGE (received_at);

CREATE INDEX message_log_sender_idx ON message_log (lower(sender), received_at);
CREATE INDEX message_log_recipients_idx ON message_log USING gin (portcullis_lower_array(recipients));
CREATE INDEX message_log_action_idx ON message_log (action, received_at);
CREATE INDEX message_log_child_idx ON message_log (child, received_at);
CREATE INDEX message_log_msg_id_idx ON message_log (msg_id);
CREATE INDEX message_log_verdicts_idx ON message_log USING gin (verdicts jsonb_path_ops);

-- The day's partition, made by the parent before it inserts rows for that day.
CREATE FUNCTION message_log_partition(day date) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF message_log '
                   'FOR VALUES FROM (%L) TO (%L)',
                   'message_log_' || to_char(day, 'YYYYMMDD'),
                   day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
END $$;

CREATE TABLE stored_messages (
    id           bigserial PRIMARY KEY,
    child_id     bigint NOT NULL,
    child        text NOT NULL,
    area         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('quarantine', 'archive')),
    file_id      text NOT NULL,
    bucket       text NOT NULL,
    size         bigint NOT NULL DEFAULT 0,
    received_at  timestamptz NOT NULL,
    sender       text NOT NULL DEFAULT '',
    recipients   text[] NOT NULL DEFAULT '{}',
    subject      text NOT NULL DEFAULT '',
    verdicts     jsonb NOT NULL DEFAULT '[]',
    rule         text NOT NULL DEFAULT '',
    msg_id       text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'stored',
    spool_epoch  text NOT NULL,
    seq          bigint NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (child_id, file_id),
    UNIQUE (child_id, spool_epoch, seq)
);
CREATE INDEX stored_messages_list_idx ON stored_messages (kind, received_at, id);
CREATE INDEX stored_messages_area_idx ON stored_messages (kind, area, received_at);
CREATE INDEX stored_messages_sender_idx ON stored_messages (lower(sender), received_at);
CREATE INDEX stored_messages_child_idx ON stored_messages (child, received_at);

-- Events reported by a child carry their spool position; cluster events have none.
ALTER TABLE events ADD COLUMN spool_epoch text, ADD COLUMN seq bigint;
CREATE UNIQUE INDEX events_child_spool_idx ON events (child_id, spool_epoch, seq)
    WHERE seq IS NOT NULL;
