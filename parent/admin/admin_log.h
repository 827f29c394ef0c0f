/* admin_log: searches over the children's reports (R7.3): the message tracking log, the
 * quarantine/archive index, the events and the audit log, newest first, with keyset pagination
 * on (time, id) — never OFFSET — and the checks of their inputs (times, limits, cursors) that
 * the CLI and the REST API share. Results are JSON for both. */
#ifndef PORTCULLIS_ADMIN_LOG_H
#define PORTCULLIS_ADMIN_LOG_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMIN_LOG_LIMIT_DEFAULT 100
#define ADMIN_LOG_LIMIT_MAX 10000
#define ADMIN_LOG_SINCE_DEFAULT "24h" /* tracking log and events: the last day unless told */
#define ADMIN_LOG_TIME_LEN 40         /* bytes of a normalised time (ISO-8601 UTC, µs) */

/* Every field may be NULL (no filter). Times are timestamptz text (ISO-8601). */
struct admin_log_filter {
    const char *since, *until;
    const char *sender, *recipient;  /* case-insensitive, whole address */
    const char *verdict;             /* "RESULT" or "ENGINE:RESULT", e.g. "virus", "av:clean" */
    const char *action;              /* delivered, quarantined, deleted, tempfailed, rejected;
                                      * audit: the action ("quarantine release"), exactly */
    const char *actor;               /* audit: who acted (OS user or API user), exactly */
    const char *child;               /* child name */
    const char *area;                /* stored messages: area name */
    const char *kind;                /* stored messages: "quarantine" or "archive" */
    const char *subject;             /* stored messages: case-insensitive substring (R5.4) */
    const char *rule;                /* stored messages: the rule that stored it, exactly */
    const char *state;               /* stored messages: stored, released, deleted, removed */
    const char *category;            /* events: "system", "cluster", …; "all" = any (R1.6) */
    int64_t limit;                   /* 1..ADMIN_LOG_LIMIT_MAX; 0: the default */
    const char *after;               /* cursor from a previous page's "next" */
};

/* True if text is a cursor this module printed ("<microseconds>.<id>"). */
bool admin_log_cursor_valid(const char *text);
/* A search bound: relative ("45s", "30m", "1h", "2d", "1w": that long ago) or absolute
 * (ISO-8601, UTC unless it says otherwise) → ISO-8601 UTC text in out (ADMIN_LOG_TIME_LEN).
 * Sets the session's time zone to UTC. 0 ok; 1 not a time (err says what is accepted, naming
 * the input by what); -1 the database failed (err). */
int admin_log_time(PGconn *c, const char *what, const char *text, char *out, char *err,
                   size_t errlen);
/* A page size: digits for 1..ADMIN_LOG_LIMIT_MAX → *out, 0; -1 otherwise. */
int admin_log_limit_parse(const char *text, int64_t *out);
/* {"records": [...], "next": cursor or null} */
json_t *admin_log_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);
/* {"messages": [...], "next": cursor or null}, f->kind required. */
json_t *admin_stored_list(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);
/* {"events": [{at, child, category, severity, message}...], "next": cursor or null}: the
 * events table (cluster events and the children's system events), f->category required;
 * since, until, child, limit and after apply. */
json_t *admin_event_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);
/* {"entries": [{id, at, actor, action, target, result, detail}...], "next": cursor or null}:
 * the audit log; since, until, actor, action, limit and after apply. */
json_t *admin_audit_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);

#endif
