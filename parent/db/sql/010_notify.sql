-- Administrator notification mail (R2.4, R5.11): one row per mail to send, written in the same
-- transaction as the event that caused it, sent by the parent's notifier thread through
-- libcurl's SMTP (notify.* settings) and retried with backoff until sent or given up.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    event_id        bigint REFERENCES events (id) ON DELETE SET NULL,
    child_id        bigint REFERENCES children (id) ON DELETE SET NULL,
    subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body            text NOT NULL CHECK (length(body) <= 65536),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    recipients      text,                 -- as sent (notify.admin_address at that time)
    last_error      text
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_created_idx ON notifications (created_at);
