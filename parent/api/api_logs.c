/* api_logs: the log searches of the REST API (R7.3, issue 6): the message tracking log, the
 * events and the audit log, newest first, a page at a time (keyset cursors). The searches are
 * admin_log's, shared with `portcullis log query`; this file reads the query fields (also for
 * api_stored.c's search) with the same checks the CLI makes. */
#include "api/api_logs.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static bool s_listed(const char *const *names, const char *key)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], key) == 0)
            return true;
    return false;
}

void api_logs_fail(const struct api_req *rq, struct api_resp *rs, const char *err)
{
    if (PQstatus(rq->db) != CONNECTION_OK)
        api_fail(rs, 503, "the database is not reachable: %s", err);
    else
        api_fail(rs, 400, "%s", err);
}

/* since / until: 0 ok, -1 answered. */
static int s_time(const struct api_req *rq, struct api_resp *rs, const char *name,
                  const char *text, char *out, const char **member)
{
    char err[API_ERROR_MAX];
    int rc;

    if (text == NULL)
        return 0;
    rc = admin_log_time(rq->db, name, text, out, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            api_fail(rs, 503, "the database is not reachable: %s", err);
        else
            api_fail(rs, 400, "%s", err);
        return -1;
    }
    *member = out;
    return 0;
}

int api_logs_filter(const struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    const char *default_since, struct api_log_query *q)
{
    const char *since = default_since, *until = NULL, *limit = NULL;
    /* the query fields a search may take and the filter member each fills */
    const struct {
        const char *name;
        const char **member;
    } fields[] = {
        { "since", &since }, { "until", &until }, { "limit", &limit },
        { "sender", &q->f.sender }, { "recipient", &q->f.recipient },
        { "verdict", &q->f.verdict }, { "action", &q->f.action }, { "actor", &q->f.actor },
        { "child", &q->f.child }, { "area", &q->f.area }, { "subject", &q->f.subject },
        { "rule", &q->f.rule }, { "state", &q->f.state }, { "category", &q->f.category },
        { "after", &q->f.after },
    };

    memset(q, 0, sizeof *q);
    for (size_t i = 0; i < rq->nquery; i++) {
        const char *k = rq->query[i].key, *v = rq->query[i].value;
        size_t j;

        if (!s_listed(allowed, k)) {
            char names[API_ERROR_MAX / 2];
            size_t o = 0;
            for (j = 0; allowed[j] != NULL && o < sizeof names; j++)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", j ? ", " : "",
                                      allowed[j]);
            api_fail(rs, 400, "unknown query field \"%.64s\" (this search takes %s)", k, names);
            return -1;
        }
        if (*v == '\0') {
            api_fail(rs, 400, "query field \"%s\" needs a value", k);
            return -1;
        }
        for (j = 0; j < ARRAY_LEN(fields) && strcmp(fields[j].name, k) != 0; j++)
            ;
        if (j == ARRAY_LEN(fields)) { /* an allowed name the table lacks: a bug here */
            api_fail(rs, 500, "query field \"%s\" is not handled", k);
            return -1;
        }
        *fields[j].member = v;
    }
    if (s_time(rq, rs, "since", since, q->since, &q->f.since) != 0 ||
        s_time(rq, rs, "until", until, q->until, &q->f.until) != 0)
        return -1;
    if (limit != NULL && admin_log_limit_parse(limit, &q->f.limit) != 0) {
        api_fail(rs, 400, "limit: '%.32s' is not a number from 1 to %d", limit,
                 ADMIN_LOG_LIMIT_MAX);
        return -1;
    }
    if (q->f.after != NULL && !admin_log_cursor_valid(q->f.after)) {
        api_fail(rs, 400, "after: '%.64s' is not a cursor (use the \"next\" value of the "
                 "previous page)", q->f.after);
        return -1;
    }
    return 0;
}

typedef json_t *(*s_search_fn)(PGconn *c, const struct admin_log_filter *f, char *err,
                               size_t errlen);

static void s_search(struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                     const char *default_since, const char *category, s_search_fn fn)
{
    struct api_log_query q;
    char err[API_ERROR_MAX];
    json_t *res;

    if (api_logs_filter(rq, rs, allowed, default_since, &q) != 0)
        return;
    if (category != NULL && q.f.category == NULL)
        q.f.category = category;
    if ((res = fn(rq->db, &q.f, err, sizeof err)) == NULL) {
        api_logs_fail(rq, rs, err);
        return;
    }
    api_ok(rs, res);
}

/* GET /logs/tracking: the message tracking log (R7.3); the last day unless since is given,
 * as `portcullis log query`. */
static void s_tracking(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "since", "until", "sender", "recipient", "verdict",
                                           "action", "child", "limit", "after", NULL };
    s_search(rq, rs, allowed, ADMIN_LOG_SINCE_DEFAULT, NULL, admin_log_query);
}

/* GET /logs/events: cluster and system events (R1.6); category "all" unless given. */
static void s_events(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "category", "since", "until", "child", "limit",
                                           "after", NULL };
    s_search(rq, rs, allowed, ADMIN_LOG_SINCE_DEFAULT, "all", admin_event_query);
}

/* GET /logs/audit: who changed what, through the CLI or the API; all of it unless since is
 * given (an audit trail has no default window). */
static void s_audit(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "since", "until", "actor", "action", "limit",
                                           "after", NULL };
    s_search(rq, rs, allowed, NULL, NULL, admin_audit_query);
}

static const struct api_route s_routes[] = {
    { "GET", API_PREFIX "/logs/tracking", API_ROLE_VIEWER, NULL, s_tracking,
      "search the message tracking log" },
    { "GET", API_PREFIX "/logs/events", API_ROLE_VIEWER, NULL, s_events,
      "search the cluster and system events" },
    { "GET", API_PREFIX "/logs/audit", API_ROLE_OPERATOR, NULL, s_audit,
      "search the audit log" },
};
const struct api_route_table api_table_logs = { s_routes, ARRAY_LEN(s_routes) };
