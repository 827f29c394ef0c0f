/* admin_log: searches over the children's reports (R7.3): the message tracking log and the
 * quarantine/archive index, newest first, with keyset pagination on (received_at, id) — never
 * OFFSET. Results are JSON for the CLI and the future REST API. */
#ifndef PORTCULLIS_ADMIN_LOG_H
#define PORTCULLIS_ADMIN_LOG_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMIN_LOG_LIMIT_DEFAULT 100
#define ADMIN_LOG_LIMIT_MAX 10000

/* Every field may be NULL (no filter). Times are timestamptz text (ISO-8601). */
struct admin_log_filter {
    const char *since, *until;
    const char *sender, *recipient;  /* case-insensitive, whole address */
    const char *verdict;             /* "RESULT" or "ENGINE:RESULT", e.g. "virus", "av:clean" */
    const char *action;              /* delivered, quarantined, deleted, tempfailed, rejected */
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
/* {"records": [...], "next": cursor or null} */
json_t *admin_log_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);
/* {"messages": [...], "next": cursor or null}, f->kind required. */
json_t *admin_stored_list(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);
/* {"events": [{at, child, category, severity, message}...], "next": cursor or null}: the
 * events table (cluster events and the children's system events), f->category required;
 * since, until, child, limit and after apply. */
json_t *admin_event_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen);

#endif
