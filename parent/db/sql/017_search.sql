-- 017: searches at 10 million rows (issue 12 point 5, R10.3). "Subject contains" on stored
-- messages was a filter over every row of the time range (2 s at 2 million rows for a rare
-- word); a trigram index finds the rows holding the text whatever its position. pg_trgm ships
-- with PostgreSQL and is a trusted extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX stored_messages_subject_trgm_idx ON stored_messages
    USING gin (lower(subject) gin_trgm_ops);
