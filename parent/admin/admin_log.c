/* admin_log: see admin_log.h. A query is assembled from fixed SQL fragments, each filter's
 * value always a parameter; PostgreSQL builds each row's JSON, so the field names live in one
 * place per table. The page is read with LIMIT n + 1 to know whether a next page exists. */
#include "admin/admin_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "util.h"

#define ADMIN_LOG_PARAMS 16

struct query {
    char sql[4096];
    size_t len;
    const char *p[ADMIN_LOG_PARAMS];
    char own[ADMIN_LOG_PARAMS][64];  /* parameters formatted here */
    int n;
};

static void s_sql(struct query *q, const char *text)
{
    q->len += (size_t)snprintf(q->sql + q->len, sizeof q->sql - q->len, "%s", text);
}

/* Appends fragment with every "$?" replaced by the next parameter's number. */
static void s_where(struct query *q, const char *fragment, const char *value)
{
    char num[16];

    q->p[q->n++] = value;
    snprintf(num, sizeof num, "$%d", q->n);
    s_sql(q, " AND ");
    for (const char *f = fragment; *f; f++) {
        if (f[0] == '$' && f[1] == '?') {
            s_sql(q, num);
            f++;
        } else {
            char ch[2] = { *f, '\0' };
            s_sql(q, ch);
        }
    }
}

bool admin_log_cursor_valid(const char *text)
{
    const char *dot = text != NULL ? strchr(text, '.') : NULL;
    size_t a, b;

    if (dot == NULL)
        return false;
    a = (size_t)(dot - text);
    b = strlen(dot + 1);
    return a >= 1 && a <= 18 && b >= 1 && b <= 18 && strspn(text, "0123456789") == a &&
           strspn(dot + 1, "0123456789") == b;
}

int admin_log_time(PGconn *c, const char *what, const char *text, char *out, char *err,
                   size_t errlen)
{
    static const char units[] = "smhdw";
    static const int64_t secs[] = { 1, 60, 3600, 86400, 604800 };
    size_t n = strlen(text), digits = strspn(text, "0123456789");
    const char *p[] = { text };
    PGresult *r;

    if (n >= 2 && digits == n - 1 && digits <= 9 && strchr(units, text[n - 1]) != NULL) {
        int64_t v = strtoll(text, NULL, 10) * secs[strchr(units, text[n - 1]) - units];
        time_t t = (time_t)(wall_ms() / 1000) - (time_t)v;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, ADMIN_LOG_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return 0;
    }
    /* a time without a zone is UTC, for the CLI and the API alike (the cast reads the
     * session's zone; every caller formats times AT TIME ZONE 'UTC' anyway) */
    if (db_exec(c, "SET TIME ZONE 'UTC'", 0, NULL, err, errlen) != 0)
        return -1;
    r = db_query(c, "SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", 1, p, err, errlen);
    if (r == NULL) {
        if (PQstatus(c) != CONNECTION_OK)
            return -1;
        snprintf(err, errlen, "%s: '%.64s' is not a time: give ISO-8601 (2026-11-23T19:00:00Z) "
                 "or a time ago (45s, 30m, 1h, 2d, 1w)", what, text);
        return 1;
    }
    strlcpy_p(out, PQgetvalue(r, 0, 0), ADMIN_LOG_TIME_LEN);
    PQclear(r);
    return 0;
}

int admin_log_limit_parse(const char *text, int64_t *out)
{
    size_t n = text != NULL ? strlen(text) : 0;

    /* digits only, so "+5", " 5" and "5x" are refused alike; 9 digits cannot overflow */
    if (n == 0 || n > 9 || strspn(text, "0123456789") != n)
        return -1;
    *out = strtoll(text, NULL, 10);
    return *out >= 1 && *out <= ADMIN_LOG_LIMIT_MAX ? 0 : -1;
}

/* The cursor, order and limit of a page ordered by (at, id), both columns named. */
static void s_keyset(struct query *q, const struct admin_log_filter *f, const char *at,
                     const char *id)
{
    int64_t limit = f->limit > 0 ? f->limit : ADMIN_LOG_LIMIT_DEFAULT;

    if (f->after != NULL) {
        const char *dot = strchr(f->after, '.');
        snprintf(q->own[0], sizeof q->own[0], "%.*s", (int)(dot - f->after), f->after);
        snprintf(q->own[1], sizeof q->own[1], "%s", dot + 1);
        q->p[q->n++] = q->own[0];
        q->p[q->n++] = q->own[1];
        q->len += (size_t)snprintf(q->sql + q->len, sizeof q->sql - q->len,
                                   " AND (%s, %s) < ('epoch'::timestamptz + $%d::bigint"
                                   " * interval '1 microsecond', $%d::bigint)", at, id,
                                   q->n - 1, q->n);
    }
    snprintf(q->own[2], sizeof q->own[2], "%" PRId64, limit + 1);
    q->p[q->n++] = q->own[2];
    q->len += (size_t)snprintf(q->sql + q->len, sizeof q->sql - q->len,
                               " ORDER BY %s DESC, %s DESC LIMIT $%d::bigint", at, id, q->n);
}

/* The filters both tables share, the cursor, order and limit. */
static void s_common(struct query *q, const struct admin_log_filter *f)
{
    if (f->since != NULL)
        s_where(q, "received_at >= $?::timestamptz", f->since);
    if (f->until != NULL)
        s_where(q, "received_at < $?::timestamptz", f->until);
    if (f->sender != NULL)
        s_where(q, "lower(sender) = lower($?)", f->sender);
    if (f->child != NULL)
        s_where(q, "child = $?", f->child);
    s_keyset(q, f, "received_at", "id");
}

/* Runs q; rows are (json text, cursor microseconds, id). */
static json_t *s_page(PGconn *c, struct query *q, const char *key, int64_t limit, char *err,
                      size_t errlen)
{
    PGresult *r = db_query(c, q->sql, q->n, q->p, err, errlen);
    json_t *out, *items;
    int n;

    if (r == NULL)
        return NULL;
    if (limit <= 0)
        limit = ADMIN_LOG_LIMIT_DEFAULT;
    out = json_object();
    items = json_array();
    n = PQntuples(r);
    for (int i = 0; i < n && i < limit; i++) {
        json_error_t je;
        json_t *row = json_loads(PQgetvalue(r, i, 0), 0, &je);
        if (row != NULL)
            json_array_append_new(items, row);
    }
    json_object_set_new(out, key, items);
    if (n > limit) {
        char cur[64];
        snprintf(cur, sizeof cur, "%s.%s", PQgetvalue(r, (int)limit - 1, 1),
                 PQgetvalue(r, (int)limit - 1, 2));
        json_object_set_new(out, "next", json_string(cur));
    } else {
        json_object_set_new(out, "next", json_null());
    }
    PQclear(r);
    return out;
}

#define ADMIN_LOG_TIME(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define ADMIN_LOG_CURSOR ", (extract(epoch FROM received_at) * 1000000)::bigint, id "

/* "RESULT" or "ENGINE:RESULT" → a jsonb containment filter; *json is the parameter (freed by
 * the caller). -1 with err when the text cannot be a JSON string. */
static int s_verdict(struct query *q, const char *verdict, char **json, char *err, size_t errlen)
{
    const char *colon = strchr(verdict, ':');
    json_t *v = json_object(), *a = json_array();

    if (colon != NULL) {
        json_object_set_new(v, "engine", json_stringn(verdict, (size_t)(colon - verdict)));
        json_object_set_new(v, "result", json_string(colon + 1));
    } else {
        json_object_set_new(v, "result", json_string(verdict));
    }
    json_array_append_new(a, v);
    *json = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (*json == NULL) {
        snprintf(err, errlen, "--verdict: not valid UTF-8 text");
        return -1;
    }
    s_where(q, "verdicts @> $?::jsonb", *json);
    return 0;
}

json_t *admin_log_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen)
{
    struct query q = { .len = 0, .n = 0 };
    char *verdict = NULL;
    json_t *res;

    if (f->after != NULL && !admin_log_cursor_valid(f->after)) {
        snprintf(err, errlen, "'%.64s' is not a cursor printed by this command", f->after);
        return NULL;
    }

    s_sql(&q, "SELECT jsonb_build_object('child', child, 'msg_id', msg_id, 'message_id', "
              "message_id, 'queue_id', queue_id, 'sender', sender, 'recipients', to_jsonb(recipients), "
              "'client_addr', client_addr, 'client_name', client_name, 'size', size, "
              "'verdicts', verdicts, 'rule', rule, 'action', action, 'received_at', "
              ADMIN_LOG_TIME("received_at") ", 'subject', subject, 'reply', reply, "
              "'quarantine_area', quarantine_area, 'archived_to', to_jsonb(archived_to), "
              "'ms_receive', ms_receive, 'ms_scan', ms_scan, 'ms_deliver', ms_deliver, "
              "'claimed_received_at', " ADMIN_LOG_TIME("claimed_received_at") ")::text"
              ADMIN_LOG_CURSOR "FROM message_log WHERE true");
    if (f->recipient != NULL)
        s_where(&q, "portcullis_lower_array(recipients) @> ARRAY[lower($?)]", f->recipient);
    if (f->action != NULL)
        s_where(&q, "action = $?", f->action);
    if (f->verdict != NULL && s_verdict(&q, f->verdict, &verdict, err, errlen) != 0)
        return NULL;
    s_common(&q, f);
    res = s_page(c, &q, "records", f->limit, err, errlen);
    free(verdict);
    return res;
}

json_t *admin_stored_list(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen)
{
    struct query q = { .len = 0, .n = 0 };
    char *verdict = NULL;
    json_t *res;

    if (f->kind == NULL || (f->after != NULL && !admin_log_cursor_valid(f->after))) {
        snprintf(err, errlen, "stored message list: %s", f->kind == NULL ? "kind is required"
                                                                          : "not a valid cursor");
        return NULL;
    }
    s_sql(&q, "SELECT jsonb_build_object('id', id, 'child', child, 'area', area, 'kind', kind, 'file_id', "
              "file_id, 'bucket', bucket, 'size', size, 'received_at', "
              ADMIN_LOG_TIME("received_at") ", 'sender', sender, 'recipients', "
              "to_jsonb(recipients), 'subject', subject, 'verdicts', verdicts, 'rule', rule, "
              "'msg_id', msg_id, 'state', state)::text"
              ADMIN_LOG_CURSOR "FROM stored_messages WHERE true");
    s_where(&q, "kind = $?", f->kind);
    if (f->area != NULL)
        s_where(&q, "area = $?", f->area);
    if (f->recipient != NULL)
        s_where(&q, "portcullis_lower_array(recipients) @> ARRAY[lower($?)]", f->recipient);
    /* R5.4 search: substring of the subject, the deciding rule, a verdict, the state */
    if (f->subject != NULL)
        /* a LIKE the trigram index (migration 017) answers; the text's own %, _ and \ are
         * escaped, so it is matched as it was typed */
        s_where(&q, "lower(subject) LIKE '%' || replace(replace(replace(lower($?), '\\', "
                    "'\\\\'), '%', '\\%'), '_', '\\_') || '%'", f->subject);
    if (f->rule != NULL)
        s_where(&q, "rule = $?", f->rule);
    if (f->state != NULL)
        s_where(&q, "state = $?", f->state);
    else /* files purged, deleted or released are history: shown when asked for by state */
        s_sql(&q, " AND removed_at IS NULL");
    if (f->verdict != NULL && s_verdict(&q, f->verdict, &verdict, err, errlen) != 0)
        return NULL;
    s_common(&q, f);
    res = s_page(c, &q, "messages", f->limit, err, errlen);
    free(verdict);
    return res;
}

json_t *admin_event_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen)
{
    struct query q = { .len = 0, .n = 0 };

    if (f->after != NULL && !admin_log_cursor_valid(f->after)) {
        snprintf(err, errlen, "'%.64s' is not a cursor printed by this command", f->after);
        return NULL;
    }
    s_sql(&q, "SELECT jsonb_build_object('at', " ADMIN_LOG_TIME("e.at") ", 'child', c.name, "
              "'category', e.category, 'severity', e.severity, 'message', e.message)::text, "
              "(extract(epoch FROM e.at) * 1000000)::bigint, e.id "
              "FROM events e LEFT JOIN children c ON c.id = e.child_id WHERE true");
    if (f->category != NULL && strcmp(f->category, "all") != 0)
        s_where(&q, "e.category = $?", f->category);
    if (f->since != NULL)
        s_where(&q, "e.at >= $?::timestamptz", f->since);
    if (f->until != NULL)
        s_where(&q, "e.at < $?::timestamptz", f->until);
    if (f->child != NULL)
        s_where(&q, "c.name = $?", f->child);
    s_keyset(&q, f, "e.at", "e.id");
    return s_page(c, &q, "events", f->limit, err, errlen);
}

json_t *admin_audit_query(PGconn *c, const struct admin_log_filter *f, char *err, size_t errlen)
{
    struct query q = { .len = 0, .n = 0 };

    if (f->after != NULL && !admin_log_cursor_valid(f->after)) {
        snprintf(err, errlen, "'%.64s' is not a cursor printed by this command", f->after);
        return NULL;
    }
    s_sql(&q, "SELECT jsonb_build_object('id', id, 'at', " ADMIN_LOG_TIME("at") ", 'actor', "
              "actor, 'action', action, 'target', target, 'result', result, 'detail', "
              "detail)::text, (extract(epoch FROM at) * 1000000)::bigint, id "
              "FROM audit_log WHERE true");
    if (f->since != NULL)
        s_where(&q, "at >= $?::timestamptz", f->since);
    if (f->until != NULL)
        s_where(&q, "at < $?::timestamptz", f->until);
    if (f->actor != NULL)
        s_where(&q, "actor = $?", f->actor);
    if (f->action != NULL)
        s_where(&q, "action = $?", f->action);
    s_keyset(&q, f, "at", "id");
    return s_page(c, &q, "entries", f->limit, err, errlen);
}
