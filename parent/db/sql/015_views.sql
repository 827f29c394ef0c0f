-- 015: views that scale (issue 12 point 3, R7.5): the fleet totals sum plain columns that
-- PostgreSQL computes from each child's last Health when the parent writes it, instead of
-- reading every child's whole Health at every status (30 ms per 3 000 children in jsonb
-- look-ups, 65 ms more for the stores). A counter absent is NULL (sum() skips it), one that is
-- not a number 0, a number beyond bigint the nearest bigint: nothing in a Health can make the
-- parent's write of it fail.
CREATE FUNCTION portcullis_jint(j jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN j IS NULL THEN NULL WHEN jsonb_typeof(j) <> 'number' THEN 0
                 ELSE least(greatest(trunc(j::numeric), -9223372036854775808),
                            9223372036854775807)::bigint END $$;

ALTER TABLE children
    ADD COLUMN h_connections bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'connections')) STORED,
    ADD COLUMN h_messages_relayed bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'messages_relayed')) STORED,
    ADD COLUMN h_messages_quarantined bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'messages_quarantined')) STORED,
    ADD COLUMN h_messages_deleted bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'messages_deleted')) STORED,
    ADD COLUMN h_messages_tempfailed bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'messages_tempfailed')) STORED,
    ADD COLUMN h_messages_rejected bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'messages_rejected')) STORED,
    ADD COLUMN h_viruses_found bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'viruses_found')) STORED,
    ADD COLUMN h_scan_exceptions bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'scan_exceptions')) STORED,
    ADD COLUMN h_bytes_relayed bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'stats'->'bytes_relayed')) STORED,
    ADD COLUMN h_messages_per_minute bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'messages_per_minute')) STORED,
    ADD COLUMN h_spool_records bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'spool_records')) STORED,
    ADD COLUMN h_spool_bytes bigint GENERATED ALWAYS AS
        (portcullis_jint(last_health->'spool_bytes')) STORED,
    -- the two stores a child has (R5.12): its usage, NULL when it reported none
    ADD COLUMN h_quarantine_bytes bigint GENERATED ALWAYS AS (portcullis_jint(
        jsonb_path_query_first(last_health, '$.stores[*] ? (@.kind == "quarantine").bytes'))) STORED,
    ADD COLUMN h_quarantine_files bigint GENERATED ALWAYS AS (portcullis_jint(
        jsonb_path_query_first(last_health, '$.stores[*] ? (@.kind == "quarantine").files'))) STORED,
    ADD COLUMN h_quarantine_quota bigint GENERATED ALWAYS AS (portcullis_jint(
        jsonb_path_query_first(last_health, '$.stores[*] ? (@.kind == "quarantine").quota_bytes'))) STORED,
    ADD COLUMN h_archive_bytes bigint GENERATED ALWAYS AS (portcullis_jint(
        jsonb_path_query_first(last_health, '$.stores[*] ? (@.kind == "archive").bytes'))) STORED,
    ADD COLUMN h_archive_files bigint GENERATED ALWAYS AS (portcullis_jint(
        jsonb_path_query_first(last_health, '$.stores[*] ? (@.kind == "archive").files'))) STORED,
    ADD COLUMN h_archive_quota bigint GENERATED ALWAYS AS (portcullis_jint(
        jsonb_path_query_first(last_health, '$.stores[*] ? (@.kind == "archive").quota_bytes'))) STORED;
