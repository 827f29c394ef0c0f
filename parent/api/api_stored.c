/* api_stored: the quarantine and archive of every child through the REST API (R5.4, R5.3,
 * issue 6): search, show with headers, download byte for byte, release, delete, reconcile.
 * The operations are admin_quarantine's, shared with `portcullis quarantine …`, and audit
 * themselves (the API user is the actor); this file checks the path and query, maps each
 * outcome to a status and shapes the answer. */
#include "api/api_logs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_quarantine.h"
#include "util.h"

/* A raw download is held in the worker's memory: up to the largest message the children
 * accept (smtp.max_message_size) plus what they add to a stored file (trace and scan
 * headers), never more than API_STORED_RAW_MAX — larger files: the CLI streams them. */
#define API_STORED_RAW_SLACK (1u << 20)          /* bytes the children may add to a message */
#define API_STORED_RAW_MAX (256ull << 20)        /* bytes: the hard cap per download */
#define API_STORED_RECONCILE_DIFFS_MAX 1000      /* differences listed in one answer */
#define API_STORED_RETRY_S 30                    /* Retry-After when a child is down */

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

/* The {kind} segment: "quarantine" or "archive"; NULL having answered 400. */
static const char *s_kind(const struct api_req *rq, struct api_resp *rs)
{
    const char *k = rq->params[0];

    if (k != NULL && (strcmp(k, "quarantine") == 0 || strcmp(k, "archive") == 0))
        return k;
    api_fail(rs, 400, "'%.64s' is not a store: say quarantine or archive", k != NULL ? k : "");
    return NULL;
}

/* An operation on a child failed: 503 (with Retry-After) when the child is down or did not
 * answer in time, so the caller retries later; otherwise as api_fail_admin. */
static void s_fail_op(const struct api_req *rq, struct api_resp *rs, const char *err)
{
    if (strstr(err, " is down") != NULL || strstr(err, "no answer") != NULL ||
        PQstatus(rq->db) != CONNECTION_OK) {
        api_fail(rs, 503, "%s", err);
        rs->retry_after_s = API_STORED_RETRY_S;
        return;
    }
    api_fail_admin(rs, err);
}

/* The index row named by {ref} in kind; must_be_stored: its file must still be on the child.
 * NULL having answered: 400 invalid ref, 404 none, 409 ambiguous or no longer stored. */
static json_t *s_row(const struct api_req *rq, struct api_resp *rs, const char *kind,
                     const char *ref, bool must_be_stored)
{
    char err[API_ERROR_MAX];
    json_t *row;

    if (!admin_stored_ref_valid(ref)) {
        api_fail(rs, 400, "'%.64s' is neither an index id (see the search) nor a file id "
                 "(32 hex digits)", ref);
        return NULL;
    }
    snprintf(rs->target, sizeof rs->target, "%s:%s", kind, ref);
    if ((row = admin_stored_get(rq->db, kind, ref, err, sizeof err)) == NULL) {
        if (PQstatus(rq->db) != CONNECTION_OK)
            api_fail(rs, 503, "the database is not reachable: %s", err);
        else
            api_fail(rs, strstr(err, "in the index") != NULL ? 404 : 409, "%s", err);
        return NULL;
    }
    if (must_be_stored && strcmp(s_str(row, "state"), "stored") != 0) {
        api_fail(rs, 409, "%s message %s is %s (%s): its file is no longer on child %s", kind,
                 ref, s_str(row, "state"), s_str(row, "removed_reason"), s_str(row, "child"));
        json_decref(row);
        return NULL;
    }
    snprintf(rs->target, sizeof rs->target, "%s:%s:%s (id %" JSON_INTEGER_FORMAT ")",
             s_str(row, "child"), kind, s_str(row, "file_id"),
             json_integer_value(json_object_get(row, "id")));
    return row;
}

/* GET /stored/{kind}: the search of R5.4, the same as `quarantine search --json`. */
static void s_search(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "since", "until", "sender", "recipient", "subject",
                                           "area", "child", "rule", "verdict", "state",
                                           "limit", "after", NULL };
    const char *kind = s_kind(rq, rs);
    struct api_log_query q;
    char err[API_ERROR_MAX];
    json_t *res;

    if (kind == NULL || api_logs_filter(rq, rs, allowed, NULL, &q) != 0)
        return;
    q.f.kind = kind;
    if ((res = admin_stored_list(rq->db, &q.f, err, sizeof err)) == NULL) {
        api_logs_fail(rq, rs, err);
        return;
    }
    api_ok(rs, res);
}

/* GET /stored/{kind}/{ref}: the row and the header block read from the child; when the child
 * cannot give them, the row with "headers_error" saying why (the index is still worth seeing). */
static void s_show(struct api_req *rq, struct api_resp *rs)
{
    const char *kind = s_kind(rq, rs);
    char err[API_ERROR_MAX] = "";
    json_t *row;
    int rc;

    if (kind == NULL || (row = s_row(rq, rs, kind, rq->params[1], false)) == NULL)
        return;
    json_decref(row);
    row = admin_stored_show(rq->db, rq->user, kind, rq->params[1], &rc, err, sizeof err);
    if (row == NULL) {
        s_fail_op(rq, rs, err);
        return;
    }
    if (rc != 0)
        json_object_set_new(row, "headers_error", json_string(err));
    api_ok(rs, row);
}

struct raw_buf {
    uint8_t *data;
    size_t len, cap;
    uint64_t max;
    bool over;                       /* the file outgrew max */
};

static int s_raw_sink(void *arg, const void *data, size_t len)
{
    struct raw_buf *b = arg;

    if ((uint64_t)b->len + len > b->max) {
        b->over = true;
        return -1;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : ADMIN_Q_CHUNK;
        while (cap < b->len + len)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* The download cap: see API_STORED_RAW_MAX. */
static uint64_t s_raw_max(PGconn *db)
{
    char err[API_ERROR_MAX];
    settings_t *s = admin_settings_effective(db, err, sizeof err);
    uint64_t max = API_STORED_RAW_MAX;

    if (s != NULL) {
        uint64_t msg = (uint64_t)settings_int(s, SETTING_SMTP_MAX_MESSAGE_SIZE);
        if (msg + API_STORED_RAW_SLACK < max)
            max = msg + API_STORED_RAW_SLACK;
        settings_free(&s);
    }
    return max;
}

/* GET /stored/{kind}/{ref}/raw: the message file byte for byte, as message/rfc822. */
static void s_raw(struct api_req *rq, struct api_resp *rs)
{
    const char *kind = s_kind(rq, rs);
    struct raw_buf b = { .data = NULL };
    char err[API_ERROR_MAX] = "";
    uint64_t size;
    json_t *row;

    if (kind == NULL || (row = s_row(rq, rs, kind, rq->params[1], true)) == NULL)
        return;
    b.max = s_raw_max(rq->db);
    if ((uint64_t)json_integer_value(json_object_get(row, "size")) > b.max) {
        api_fail(rs, 413, "%s message %s has %" JSON_INTEGER_FORMAT " bytes, more than the "
                 "%" PRIu64 " an API download holds: use `portcullis %s download`", kind,
                 rq->params[1], json_integer_value(json_object_get(row, "size")), b.max, kind);
        json_decref(row);
        return;
    }
    snprintf(rs->filename, sizeof rs->filename, "%.64s.eml", s_str(row, "file_id"));
    json_decref(row);
    if (admin_stored_download(rq->db, rq->user, kind, rq->params[1], s_raw_sink, &b, &size, err,
                              sizeof err) != 0) {
        free(b.data);
        rs->filename[0] = '\0';
        if (b.over)
            api_fail(rs, 413, "%s message %s is larger than the %" PRIu64 " bytes an API "
                     "download holds: use `portcullis %s download`", kind, rq->params[1],
                     b.max, kind);
        else
            s_fail_op(rq, rs, err);
        return;
    }
    rs->status = 200;
    rs->data = b.data != NULL ? b.data : xmalloc(1); /* an empty file is still a file */
    rs->len = b.len;
    rs->content_type = "message/rfc822";
}

/* POST /stored/quarantine/{ref}/release: the child delivers it with its original envelope. */
static void s_release(struct api_req *rq, struct api_resp *rs)
{
    static const char *const none[] = { NULL };
    char err[API_ERROR_MAX] = "", msg[API_ERROR_MAX] = "";
    json_t *row;

    if (api_body_only(rq, rs, none) != 0 ||
        (row = s_row(rq, rs, "quarantine", rq->params[0], true)) == NULL)
        return;
    json_decref(row);
    if (admin_stored_release(rq->db, rq->user, rq->params[0], msg, sizeof msg, err,
                             sizeof err) != 0) {
        s_fail_op(rq, rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s}", "message", msg));
}

/* DELETE /stored/{kind}/{ref}: the child removes the file; the row says deleted. */
static void s_delete(struct api_req *rq, struct api_resp *rs)
{
    const char *kind = s_kind(rq, rs);
    char err[API_ERROR_MAX] = "", msg[API_ERROR_MAX] = "";
    json_t *row;

    if (kind == NULL || (row = s_row(rq, rs, kind, rq->params[1], true)) == NULL)
        return;
    json_decref(row);
    if (admin_stored_delete(rq->db, rq->user, kind, rq->params[1], msg, sizeof msg, err,
                            sizeof err) != 0) {
        s_fail_op(rq, rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s}", "message", msg));
}

struct recon_collect {
    json_t *diffs;
    size_t n;                        /* differences seen, listed or not */
    char first_error[API_ERROR_MAX]; /* the first child's failure, "" none */
};

static void s_recon_cb(void *arg, const struct admin_reconcile_diff *d)
{
    struct recon_collect *rc = arg;

    if (strcmp(d->what, "error") == 0 && rc->first_error[0] == '\0')
        snprintf(rc->first_error, sizeof rc->first_error, "%s %s: %s", d->child, d->kind,
                 d->detail);
    if (rc->n++ < API_STORED_RECONCILE_DIFFS_MAX)
        json_array_append_new(rc->diffs, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "child",
                                                   d->child, "kind", d->kind, "what", d->what,
                                                   "file_id", d->file_id, "row_id",
                                                   (json_int_t)d->row_id, "detail", d->detail));
}

/* POST /reconcile {child?, kind?}: R5.3 on demand; totals and the differences found (the
 * first API_STORED_RECONCILE_DIFFS_MAX; "truncated" says when there were more). Some children
 * failing is a 200 with "error"; all of them failing is the failure's status. */
static void s_reconcile(struct api_req *rq, struct api_resp *rs)
{
    static const char *const fields[] = { "child", "kind", NULL };
    struct recon_collect c = { .diffs = NULL };
    struct admin_reconcile_totals t;
    const char *child = NULL, *kind = NULL;
    char err[API_ERROR_MAX] = "";
    json_t *o;
    int rc;

    if (api_body_only(rq, rs, fields) != 0 ||
        api_body_string(rq, rs, "child", false, &child) < 0 ||
        api_body_string(rq, rs, "kind", false, &kind) < 0)
        return;
    if (kind != NULL && strcmp(kind, "quarantine") != 0 && strcmp(kind, "archive") != 0) {
        api_fail(rs, 400, "field \"kind\": '%.64s' is not a store: say quarantine or archive",
                 kind);
        return;
    }
    snprintf(rs->target, sizeof rs->target, "%.100s %.100s", child != NULL ? child : "all",
             kind != NULL ? kind : "quarantine+archive");
    memset(&t, 0, sizeof t);
    c.diffs = json_array();
    rc = admin_reconcile(rq->db, rq->user, child, kind, false, s_recon_cb, &c, &t, err,
                         sizeof err);
    if (rc != 0 && (t.children == 0 || t.failed >= t.children)) {
        json_decref(c.diffs);
        if (strstr(err, "no enrolled child") != NULL)
            api_fail(rs, 404, "%s", err);
        else
            s_fail_op(rq, rs, c.first_error[0] != '\0' ? c.first_error : err);
        return;
    }
    o = json_pack("{s:o,s:b,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "differences", c.diffs, "truncated",
                  c.n > API_STORED_RECONCILE_DIFFS_MAX, "totals", "children",
                  (json_int_t)t.children, "failed", (json_int_t)t.failed, "files",
                  (json_int_t)t.files, "no_file", (json_int_t)t.no_file, "no_row",
                  (json_int_t)t.no_row, "restored", (json_int_t)t.restored);
    if (o != NULL)
        json_object_set_new(o, "error", rc != 0 ? json_string(err) : json_null());
    api_ok(rs, o);
}

static const struct api_route s_routes[] = {
    { "GET", API_PREFIX "/stored/{kind}", API_ROLE_VIEWER, NULL, s_search,
      "search the quarantine or the archive of every child" },
    { "GET", API_PREFIX "/stored/{kind}/{ref}", API_ROLE_OPERATOR, NULL, s_show,
      "a stored message's index entry and headers" },
    { "GET", API_PREFIX "/stored/{kind}/{ref}/raw", API_ROLE_OPERATOR, NULL, s_raw,
      "download a stored message byte for byte" },
    { "POST", API_PREFIX "/stored/quarantine/{ref}/release", API_ROLE_OPERATOR, NULL, s_release,
      "release a quarantined message to its recipients" },
    { "DELETE", API_PREFIX "/stored/{kind}/{ref}", API_ROLE_OPERATOR, NULL, s_delete,
      "delete a stored message" },
    { "POST", API_PREFIX "/reconcile", API_ROLE_OPERATOR, NULL, s_reconcile,
      "compare the children's stored files with the index and repair it" },
};
const struct api_route_table api_table_stored = { s_routes, ARRAY_LEN(s_routes) };
