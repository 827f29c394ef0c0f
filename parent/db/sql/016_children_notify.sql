-- 016: the cluster loop keeps the enrolled children's keys in memory (issue 12 point 2, R10.1,
-- R10.2), so that a reconnect storm costs it no database round trip per handshake. Whatever
-- enrols, approves, renames, re-keys or removes a child — the enrolment thread, the API, the
-- CLI, or an operator's own SQL — tells it so here, once per statement, and it reloads them.
CREATE FUNCTION portcullis_children_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_notify('portcullis_children', ''); RETURN NULL; END $$;

CREATE TRIGGER children_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF enrolment, public_key, name OR TRUNCATE ON children
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_children_changed();
