/* api_fleet: the fleet dashboard's reads (issue 6 point 2; R7.5, R5.12). GET /api/v1/status is
 * admin_status — exactly what `portcullis status --json` prints — and
 * GET /api/v1/stats/timeseries counts the message log per time bucket for the console's
 * throughput and verdict charts. */
#include "api/api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "db/db.h"
#include "policy.h"
#include "util.h"

#define FLEET_PAGE_DEFAULT 100      /* children in a page of the list when none is asked for */
#define FLEET_NAME_MAX 64           /* characters of ?name= and ?after= (a child name: 63) */
#define FLEET_MINUTES_DEFAULT 60    /* the window when none is asked for */
#define FLEET_MINUTES_MAX 1440      /* one day: the console's longest chart */
#define FLEET_STEP_DEFAULT_S 60     /* per-minute buckets */
#define FLEET_STEP_MAX_S 3600       /* hourly buckets at the coarsest */

/* The outcomes a tracking record's action takes (child/scan/smtpd_scan.c), always present in
 * every point so a chart needs no zero-filling; an unforeseen action appears as it comes. */
static const char *const s_actions[] = { "delivered", "quarantined", "deleted", "tempfailed",
                                         "rejected" };
/* One verdict class per message, the first that holds:
 *   virus      an engine (av, light, smart) found a virus
 *   exception  a scan exception (oversize, encrypted archive, engine error …)
 *   spam       the anti-spam score reached POLICY_SPAM_THRESHOLD_DEFAULT
 *   clean      scanned (local engine or smart scan) and none of the above
 *   none       not scanned (scanning off, or no verdict: e.g. a temporary failure) */
static const char *const s_verdicts[] = { "clean", "virus", "spam", "exception", "none" };

/* A whole-number query field within [min, max]; def when absent. -1 having answered 400. */
static int s_query_int(const struct api_req *rq, struct api_resp *rs, const char *key,
                       int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const char *v = api_query(rq, key);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (parse_int64(v, out) != 0 || *out < min || *out > max) {
        api_fail(rs, 400, "%s must be a whole number from %" PRId64 " to %" PRId64, key, min,
                 max);
        return -1;
    }
    return 0;
}

/* GET /status and GET /children (issue 12 point 3): the fleet's totals and one page of
 * children with the summary of their Health, filtered by ?state=up|down|pending, ?name=PART,
 * ?lagging=true; ?limit (1..ADMIN_STATUS_PAGE_MAX, default FLEET_PAGE_DEFAULT) and
 * ?after=NAME (the previous page's "next") page through them in name order. */
void api_fleet_status(struct api_req *rq, struct api_resp *rs)
{
    char err[API_ERROR_MAX];
    struct admin_status_query q = { 0 };
    const char *lag = api_query(rq, "lagging");
    int64_t limit;
    json_t *st;

    q.state = api_query(rq, "state");
    q.name = api_query(rq, "name");
    q.after = api_query(rq, "after");
    if (q.state != NULL && strcmp(q.state, "up") != 0 && strcmp(q.state, "down") != 0 &&
        strcmp(q.state, "pending") != 0) {
        api_fail(rs, 400, "state must be up, down or pending");
        return;
    }
    if ((q.name != NULL && strlen(q.name) > FLEET_NAME_MAX) ||
        (q.after != NULL && strlen(q.after) > FLEET_NAME_MAX)) {
        api_fail(rs, 400, "name and after are at most %d characters", FLEET_NAME_MAX);
        return;
    }
    if (lag != NULL && strcmp(lag, "true") != 0 && strcmp(lag, "false") != 0) {
        api_fail(rs, 400, "lagging must be true or false");
        return;
    }
    q.lagging = lag != NULL && strcmp(lag, "true") == 0;
    if (s_query_int(rq, rs, "limit", FLEET_PAGE_DEFAULT, 1, ADMIN_STATUS_PAGE_MAX, &limit) != 0)
        return;
    q.limit = (unsigned)limit;
    if ((st = admin_status(rq->db, &q, err, sizeof err)) == NULL) {
        api_fail_admin(rs, err);
        return;
    }
    api_ok(rs, st);
}

/* GET /children/{name}/health: one child's whole last Health. */
void api_fleet_child_health(struct api_req *rq, struct api_resp *rs)
{
    char err[API_ERROR_MAX];
    json_t *h = admin_child_health(rq->db, rq->params[0], err, sizeof err);

    snprintf(rs->target, sizeof rs->target, "%s", rq->params[0]);
    if (h == NULL && strncmp(err, "no child named", 14) == 0)
        api_fail(rs, 404, "%s", err);
    else if (h == NULL)
        api_fail_admin(rs, err);
    else
        api_ok(rs, h);
}

static void s_add(json_t *obj, const char *key, json_int_t n)
{
    json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + n));
}

/* Every key of set in every point's sub-object name, 0 where nothing was counted. */
static void s_zero_fill(json_t *points, const char *name, const json_t *set)
{
    const char *key;
    json_t *pt, *v;
    size_t i;

    json_array_foreach(points, i, pt) {
        json_t *o = json_object_get(pt, name);
        json_object_foreach((json_t *)set, key, v)
            if (json_object_get(o, key) == NULL)
                json_object_set_new(o, key, json_integer(0));
    }
}

static json_t *s_key_set(const char *const *keys, size_t n)
{
    json_t *set = json_object();

    for (size_t i = 0; i < n; i++)
        json_object_set_new(set, keys[i], json_true());
    return set;
}

static json_t *s_set_names(const json_t *set)
{
    json_t *a = json_array(), *v;
    const char *key;

    json_object_foreach((json_t *)set, key, v)
        json_array_append_new(a, json_string(key));
    return a;
}

/* The bucket counts: t (epoch seconds, the bucket's start), child, action, verdict class. */
static const char s_series_sql[] =
    "SELECT (floor(extract(epoch FROM received_at) / $1::bigint) * $1::bigint)::bigint,"
    " child, action,"
    " CASE WHEN verdicts @> '[{\"result\": \"virus\"}]' THEN 'virus'"
    "  WHEN verdicts @> '[{\"result\": \"exception\"}]' THEN 'exception'"
    "  WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(verdicts) v"
    "   WHERE v->>'engine' = 'spam' AND v->>'detail' ~ '^-?[0-9]+(\\.[0-9]+)?( |$)'"
    "   AND split_part(v->>'detail', ' ', 1)::numeric >= $4::numeric) THEN 'spam'"
    "  WHEN verdicts @> '[{\"engine\": \"av\", \"result\": \"clean\"}]'"
    "   OR verdicts @> '[{\"engine\": \"smart\", \"result\": \"clean\"}]' THEN 'clean'"
    "  ELSE 'none' END,"
    " count(*) "
    "FROM message_log "
    "WHERE received_at >= to_timestamp($2::bigint) AND received_at < to_timestamp($3::bigint) "
    "GROUP BY 1, 2, 3, 4";

static void s_timeseries(struct api_req *rq, struct api_resp *rs)
{
    char err[API_ERROR_MAX], sstep[24], sfrom[24], sto[24], sthr[32];
    const char *p[] = { sstep, sfrom, sto, sthr };
    int64_t minutes, step, npoints, last, from, to;
    json_t *out, *points, *actions, *verdicts, *children;
    PGresult *r;

    if (s_query_int(rq, rs, "minutes", FLEET_MINUTES_DEFAULT, 1, FLEET_MINUTES_MAX, &minutes) ||
        s_query_int(rq, rs, "step", FLEET_STEP_DEFAULT_S, 60, FLEET_STEP_MAX_S, &step))
        return;
    if (step % 60 != 0) {
        api_fail(rs, 400, "step must be a whole number of minutes, in seconds (60, 300, 3600 …)");
        return;
    }
    npoints = (minutes * 60 + step - 1) / step;
    /* The database's clock, so a console in another time zone or skew asks for the same. */
    snprintf(sstep, sizeof sstep, "%" PRId64, step);
    r = db_query(rq->db, "SELECT (floor(extract(epoch FROM now()) / $1::bigint) * $1::bigint)"
                         "::bigint", 1, p, err, sizeof err);
    if (r == NULL) {
        api_fail_admin(rs, err);
        return;
    }
    last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    from = last - (npoints - 1) * step;
    to = last + step;
    snprintf(sfrom, sizeof sfrom, "%" PRId64, from);
    snprintf(sto, sizeof sto, "%" PRId64, to);
    snprintf(sthr, sizeof sthr, "%.6g", POLICY_SPAM_THRESHOLD_DEFAULT);
    r = db_query(rq->db, s_series_sql, 4, p, err, sizeof err);
    if (r == NULL) {
        api_fail_admin(rs, err);
        return;
    }
    points = json_array();
    for (int64_t i = 0; i < npoints; i++)
        json_array_append_new(points, json_pack("{s:I, s:I, s:{}, s:{}, s:{}}", "t",
                                                (json_int_t)(from + i * step), "total",
                                                (json_int_t)0, "by_action", "by_verdict",
                                                "by_child"));
    actions = s_key_set(s_actions, ARRAY_LEN(s_actions));
    verdicts = s_key_set(s_verdicts, ARRAY_LEN(s_verdicts));
    children = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t t = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        json_int_t n = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        json_t *pt = json_array_get(points, (size_t)((t - from) / step));

        if (t < from || t >= to || pt == NULL)
            continue; /* a row stamped on the bucket edge as the clock moved on */
        s_add(pt, "total", n);
        s_add(json_object_get(pt, "by_child"), PQgetvalue(r, i, 1), n);
        s_add(json_object_get(pt, "by_action"), PQgetvalue(r, i, 2), n);
        s_add(json_object_get(pt, "by_verdict"), PQgetvalue(r, i, 3), n);
        json_object_set_new(children, PQgetvalue(r, i, 1), json_true());
        json_object_set_new(actions, PQgetvalue(r, i, 2), json_true());
    }
    PQclear(r);
    /* Enrolled children with nothing in the window still get their (zero) series. */
    r = db_query(rq->db, "SELECT name FROM children WHERE enrolment = 'enrolled'", 0, NULL, err,
                 sizeof err);
    if (r == NULL) {
        json_decref(points);
        json_decref(actions);
        json_decref(verdicts);
        json_decref(children);
        api_fail_admin(rs, err);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(children, PQgetvalue(r, i, 0), json_true());
    PQclear(r);
    s_zero_fill(points, "by_action", actions);
    s_zero_fill(points, "by_verdict", verdicts);
    s_zero_fill(points, "by_child", children);
    out = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "step_s", (json_int_t)step,
                    "minutes", (json_int_t)minutes, "from", (json_int_t)from, "to",
                    (json_int_t)to, "children", s_set_names(children), "actions",
                    s_set_names(actions), "verdicts", s_set_names(verdicts), "points", points);
    json_decref(actions);
    json_decref(verdicts);
    json_decref(children);
    api_ok(rs, out);
}

static const struct api_route s_routes[] = {
    { "GET", API_PREFIX "/status", API_ROLE_VIEWER, NULL, api_fleet_status,
      "fleet status: every child's state, versions, rates, counters, stores; cluster totals" },
    { "GET", API_PREFIX "/stats/timeseries", API_ROLE_VIEWER, NULL, s_timeseries,
      "messages per time bucket by child, action and verdict (?minutes=1..1440&step=60..3600)" },
};
const struct api_route_table api_table_fleet = { s_routes, ARRAY_LEN(s_routes) };
