/* admin_reconcile: the reconciliation of R5.3 (see admin_quarantine.h). The child lists its
 * files a page at a time (command "reconcile", name order, cursor); the pages go into a
 * temporary table and the comparison is SQL. Races with mail still arriving are avoided by
 * time: a row counts as missing its file only if it was indexed before the listing began
 * (its file existed by then), and a file counts as missing its row only if it is older than
 * ADMIN_RECONCILE_FRESH_S (its index report has had time to arrive). */
#include "admin/admin_quarantine.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_command.h"
#include "admin/hdrpeek.h"
#include "db/db.h"
#include "link.h"
#include "log.h"
#include "storepath.h"
#include "util.h"

#define ADMIN_RECONCILE_LOCK "7710" /* advisory lock class: one reconciliation per child */
#define ADMIN_RECONCILE_REL_SCAN "%109s" /* STOREPATH_REL_MAX as a sscanf width */
_Static_assert(STOREPATH_REL_MAX == 109, "ADMIN_RECONCILE_REL_SCAN follows STOREPATH_REL_MAX");
#define ADMIN_RECONCILE_UP_WINDOW_MS (LINK_HEARTBEAT_MS * (LINK_LIVENESS + 1))

struct area_map {
    char (*dir)[STOREPATH_AREA_DIR_MAX + 1];
    char **name;
    size_t n;
};

struct run {
    PGconn *c;
    const char *actor, *child, *kind;
    int64_t child_id;
    char idtxt[32], t0[64];
    admin_reconcile_cb cb;
    void *arg;
    struct admin_reconcile_totals *t;
    uint64_t no_file, no_row, restored;
};

static void s_diff(struct run *r, const char *what, const char *file_id, int64_t row_id,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void s_diff(struct run *r, const char *what, const char *file_id, int64_t row_id,
                   const char *fmt, ...)
{
    struct admin_reconcile_diff d = { r->child, r->kind, what, file_id, row_id, NULL };
    char detail[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    d.detail = detail;
    log_info("reconcile child=%s store=%s %s file_id=%s row=%" PRId64 ": %s", r->child, r->kind,
             what, file_id, row_id, detail);
    if (r->cb != NULL)
        r->cb(r->arg, &d);
}

static void s_areas(struct run *r, struct area_map *m)
{
    char err[256];
    const char *p[] = { r->idtxt };
    PGresult *res = db_query(r->c, "SELECT name FROM areas UNION "
                                   "SELECT DISTINCT area FROM stored_messages "
                                   "WHERE child_id = $1::bigint", 1, p, err, sizeof err);

    memset(m, 0, sizeof *m);
    if (res == NULL)
        return;
    m->n = (size_t)PQntuples(res);
    m->dir = xcalloc(m->n + 1, sizeof *m->dir);
    m->name = xcalloc(m->n + 1, sizeof *m->name);
    for (size_t i = 0; i < m->n; i++) {
        m->name[i] = xstrdup(PQgetvalue(res, (int)i, 0));
        storepath_area_dir(m->name[i], m->dir[i], sizeof m->dir[i]);
    }
    PQclear(res);
}

static void s_areas_free(struct area_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->name[i]);
    free(m->name);
    free(m->dir);
}

/* An area directory's area (the directory name itself if no area matches any more). */
static const char *s_area_of(const struct area_map *m, const char *dir)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->dir[i], dir) == 0)
            return m->name[i];
    return dir;
}

/* Lines "rel size mtime_ms" of one page → rows of the temporary table. */
static int s_load_page(struct run *r, const uint8_t *data, size_t len, char *err, size_t errlen)
{
    json_t *rows = json_array();
    const char *p = (const char *)data, *end = p + len;
    char *txt;
    int rc;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        char line[STOREPATH_REL_MAX + 64], rel[STOREPATH_REL_MAX + 1];
        char ad[STOREPATH_AREA_DIR_MAX + 1], b[STOREPATH_BUCKET_LEN + 1], f[STOREPATH_FILE_ID_LEN + 1];
        unsigned long long size, mtime;
        size_t ll = (size_t)((nl != NULL ? nl : end) - p);
        if (ll < sizeof line) {
            memcpy(line, p, ll);
            line[ll] = '\0';
            if (sscanf(line, ADMIN_RECONCILE_REL_SCAN " %llu %llu", rel, &size, &mtime) == 3 &&
                storepath_rel_parse(rel, ad, b, f) == 0)
                json_array_append_new(rows, json_pack("{s:s,s:s,s:I,s:I}", "file_id", f, "rel",
                                                      rel, "size", (json_int_t)size, "mtime_ms",
                                                      (json_int_t)mtime));
        }
        p = nl != NULL ? nl + 1 : end;
    }
    txt = json_dumps(rows, JSON_COMPACT);
    r->t->files += json_array_size(rows);
    json_decref(rows);
    {
        const char *prm[] = { txt };
        rc = db_exec(r->c, "INSERT INTO reconcile_files SELECT x.file_id, x.rel, x.size, x.mtime_ms "
                           "FROM jsonb_to_recordset($1::jsonb) AS x(file_id text, rel text, "
                           "size bigint, mtime_ms bigint) ON CONFLICT DO NOTHING",
                     1, prm, err, errlen);
    }
    free(txt);
    return rc;
}

static int s_list(struct run *r, char *err, size_t errlen)
{
    struct admin_cmd cmd = { .kind = "reconcile", .store = r->kind };
    char cursor[STOREPATH_REL_MAX + 1] = "";

    if (db_exec(r->c, "CREATE TEMP TABLE IF NOT EXISTS reconcile_files (file_id text PRIMARY "
                      "KEY, rel text NOT NULL, size bigint, mtime_ms bigint)", 0, NULL, err,
                errlen) != 0 ||
        db_exec(r->c, "TRUNCATE reconcile_files", 0, NULL, err, errlen) != 0)
        return -1;
    for (unsigned page = 0; page < ADMIN_RECONCILE_PAGES_MAX; page++) {
        struct admin_cmd_result res;
        const char *next;
        cmd.cursor = cursor[0] != '\0' ? cursor : NULL;
        if (admin_command_run(r->c, r->child_id, r->actor, &cmd, &res, err, errlen) != 0 ||
            s_load_page(r, res.data, res.len, err, errlen) != 0) {
            admin_cmd_result_clear(&res);
            return -1;
        }
        next = json_string_value(json_object_get(res.detail, "next"));
        if (next == NULL || next[0] == '\0' || strcmp(next, cursor) == 0) {
            admin_cmd_result_clear(&res);
            return 0;
        }
        strlcpy_p(cursor, next, sizeof cursor);
        admin_cmd_result_clear(&res);
    }
    snprintf(err, errlen, "more than %d listing pages: stopped", ADMIN_RECONCILE_PAGES_MAX);
    return -1;
}

/* Rows whose file is gone → 'removed'; rows said removed whose file is there → 'stored'. */
static int s_rows(struct run *r, char *err, size_t errlen)
{
    char lim[16];
    const char *p[] = { r->idtxt, r->kind, r->t0, lim };
    PGresult *res;

    snprintf(lim, sizeof lim, "%d", ADMIN_RECONCILE_REPAIR_MAX);
    res = db_query(r->c, "WITH gone AS (SELECT id FROM stored_messages s WHERE child_id = $1::bigint "
                         " AND kind = $2 AND state = 'stored' AND removed_at IS NULL AND ingested_at < $3::timestamptz "
                         " AND NOT EXISTS (SELECT 1 FROM reconcile_files f WHERE f.file_id = s.file_id) "
                         " ORDER BY id LIMIT $4::int) "
                         "UPDATE stored_messages m SET state = 'removed', removed_at = now(), "
                         " removed_reason = 'reconcile' FROM gone "
                         "WHERE m.id = gone.id AND m.removed_at IS NULL "
                         "RETURNING m.id, m.file_id, m.area, m.bucket, "
                         " to_char(m.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                   4, p, err, errlen);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = 0;
        parse_int64(PQgetvalue(res, i, 0), &id);
        r->no_file++;
        s_diff(r, "no_file", PQgetvalue(res, i, 1), id,
               "index row %s (area \"%s\", received %s) has no file on the child: marked removed (reconcile)",
               PQgetvalue(res, i, 0), PQgetvalue(res, i, 2), PQgetvalue(res, i, 4));
    }
    PQclear(res);
    /* Only a reconciliation's own mark is undone: a deletion, release or purge the child
     * confirmed may race with this listing, a file found missing may come back (a restored
     * backup, a disk remounted). */
    res = db_query(r->c, "UPDATE stored_messages m SET state = 'stored', removed_at = NULL, "
                         " removed_reason = NULL FROM reconcile_files f "
                         "WHERE m.child_id = $1::bigint AND m.kind = $2 AND m.state = 'removed' "
                         " AND m.removed_reason = 'reconcile' "
                         " AND f.file_id = m.file_id AND $3::text IS NOT NULL "
                         "RETURNING m.id, m.file_id, f.rel", 3, p, err, errlen);
    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id = 0;
        parse_int64(PQgetvalue(res, i, 0), &id);
        r->restored++;
        s_diff(r, "restored", PQgetvalue(res, i, 1), id,
               "index row %s said removed, but the file is there (%s): marked stored again",
               PQgetvalue(res, i, 0), PQgetvalue(res, i, 2));
    }
    PQclear(res);
    return 0;
}

/* One file with no row: a row from its place, size, time and headers. */
static void s_index_file(struct run *r, const struct area_map *am, const char *file_id,
                         const char *rel, const char *size, const char *mtime)
{
    char ad[STOREPATH_AREA_DIR_MAX + 1], b[STOREPATH_BUCKET_LEN + 1], f[STOREPATH_FILE_ID_LEN + 1];
    char err[1024];
    struct admin_cmd cmd = { .kind = "fetch", .store = r->kind, .file_id = file_id,
                             .length = ADMIN_Q_HEAD_BYTES };
    struct admin_cmd_result res;
    struct hdrpeek *h;
    json_t *rc;
    char *rctxt;
    PGresult *ins;

    if (storepath_rel_parse(rel, ad, b, f) != 0)
        return;
    cmd.area = s_area_of(am, ad);
    cmd.bucket = b;
    if (admin_command_run(r->c, r->child_id, r->actor, &cmd, &res, err, sizeof err) != 0) {
        r->no_row++;
        s_diff(r, "no_row", file_id, 0, "file %s has no index row and could not be read (%s): "
               "not indexed", rel, err);
        admin_cmd_result_clear(&res);
        return;
    }
    h = xmalloc(sizeof *h);
    hdrpeek_parse((const char *)res.data, res.len, h);
    admin_cmd_result_clear(&res);
    rc = json_array();
    for (size_t i = 0; i < h->nrcpts; i++)
        json_array_append_new(rc, json_string(h->rcpts[i]));
    rctxt = json_dumps(rc, JSON_COMPACT);
    json_decref(rc);
    {
        const char *p[] = { r->idtxt, r->child, s_area_of(am, ad), r->kind, file_id, b, size,
                            mtime, h->sender, rctxt, h->subject };
        ins = db_query(r->c, "INSERT INTO stored_messages (child_id, child, area, kind, file_id, "
                             " bucket, size, received_at, sender, recipients, subject, verdicts, "
                             " rule, msg_id, state, spool_epoch, seq) "
                             "VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::bigint, "
                             " 'epoch'::timestamptz + $8::bigint * interval '1 millisecond', $9, "
                             " ARRAY(SELECT jsonb_array_elements_text($10::jsonb)), $11, '[]', '', "
                             " '', 'stored', 'reconcile', nextval('stored_reconcile_seq')) "
                             "ON CONFLICT DO NOTHING RETURNING id", 11, p, err, sizeof err);
    }
    r->no_row++;
    if (ins == NULL) {
        s_diff(r, "no_row", file_id, 0, "file %s has no index row; indexing it failed: %s", rel, err);
    } else {
        int64_t id = 0;
        if (PQntuples(ins) == 1)
            parse_int64(PQgetvalue(ins, 0, 0), &id);
        s_diff(r, "no_row", file_id, id, "file %s (%s bytes) had no index row: indexed as row "
               "%" PRId64 " from its headers (from <%s>, %zu recipient(s), subject \"%.80s\")",
               rel, size, id, h->sender, h->nrcpts, h->subject);
        PQclear(ins);
    }
    free(rctxt);
    free(h);
}

static int s_files(struct run *r, char *err, size_t errlen)
{
    char lim[16], fresh[16];
    const char *p[] = { r->idtxt, r->t0, lim, fresh };
    struct area_map am;
    PGresult *res;

    snprintf(lim, sizeof lim, "%d", ADMIN_RECONCILE_REPAIR_MAX);
    snprintf(fresh, sizeof fresh, "%d", ADMIN_RECONCILE_FRESH_S);
    res = db_query(r->c, "SELECT f.file_id, f.rel, f.size, f.mtime_ms FROM reconcile_files f "
                         "WHERE NOT EXISTS (SELECT 1 FROM stored_messages s "
                         "  WHERE s.child_id = $1::bigint AND s.file_id = f.file_id) "
                         " AND f.mtime_ms < (extract(epoch FROM $2::timestamptz) * 1000)::bigint "
                         "  - $4::bigint * 1000 "
                         "ORDER BY f.rel LIMIT $3::int", 4, p, err, errlen);
    if (res == NULL)
        return -1;
    s_areas(r, &am);
    for (int i = 0; i < PQntuples(res); i++)
        s_index_file(r, &am, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                     PQgetvalue(res, i, 3));
    s_areas_free(&am);
    PQclear(res);
    return 0;
}

static int s_child_store(struct run *r, char *err, size_t errlen)
{
    const char *p[] = { r->idtxt };
    PGresult *res;
    bool locked;
    int rc;

    res = db_query(r->c, "SELECT pg_try_advisory_lock(" ADMIN_RECONCILE_LOCK ", $1::int), now()::text", 1, p,
                   err, errlen);
    if (res == NULL)
        return -1;
    locked = PQgetvalue(res, 0, 0)[0] == 't';
    strlcpy_p(r->t0, PQgetvalue(res, 0, 1), sizeof r->t0);
    PQclear(res);
    if (!locked) {
        snprintf(err, errlen, "a reconciliation of child %s is already running", r->child);
        return -1;
    }
    r->no_file = r->no_row = r->restored = 0;
    rc = s_list(r, err, errlen);
    if (rc == 0)
        rc = s_rows(r, err, errlen);
    if (rc == 0)
        rc = s_files(r, err, errlen);
    {
        char uerr[256];
        if (db_exec(r->c, "SELECT pg_advisory_unlock(" ADMIN_RECONCILE_LOCK ", $1::int)", 1, p,
                    uerr, sizeof uerr) != 0)
            log_warn("reconcile child=%s: unlock: %s", r->child, uerr);
    }
    r->t->no_file += r->no_file;
    r->t->no_row += r->no_row;
    r->t->restored += r->restored;
    return rc;
}

int admin_reconcile(PGconn *c, const char *actor, const char *child, const char *kind,
                    bool only_up, admin_reconcile_cb cb, void *arg,
                    struct admin_reconcile_totals *t, char *err, size_t errlen)
{
    static const char *const kinds[] = { "quarantine", "archive" };
    char window[48], summary[512], action[64];
    const char *p[] = { child != NULL ? child : "", window };
    PGresult *res;
    int failed = 0;

    memset(t, 0, sizeof *t);
    snprintf(window, sizeof window, "%d milliseconds", ADMIN_RECONCILE_UP_WINDOW_MS);
    res = db_query(c, "SELECT id, name, connected AND last_seen > now() - $2::interval "
                      "FROM children WHERE enrolment = 'enrolled' AND ($1 = '' OR name = $1) "
                      "ORDER BY name", 2, p, err, errlen);
    if (res == NULL)
        return -1;
    if (child != NULL && PQntuples(res) == 0) {
        snprintf(err, errlen, "no enrolled child is named '%.64s'", child);
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct run r = { .c = c, .actor = actor, .child = PQgetvalue(res, i, 1), .cb = cb,
                         .arg = arg, .t = t };
        uint64_t before = t->no_file + t->no_row + t->restored;
        bool ok = true;
        if (only_up && PQgetvalue(res, i, 2)[0] != 't')
            continue;
        parse_int64(PQgetvalue(res, i, 0), &r.child_id);
        snprintf(r.idtxt, sizeof r.idtxt, "%" PRId64, r.child_id);
        t->children++;
        for (size_t k = 0; k < ARRAY_LEN(kinds) && ok; k++) {
            char e[1024] = "";
            if (kind != NULL && strcmp(kind, kinds[k]) != 0)
                continue;
            r.kind = kinds[k];
            if (s_child_store(&r, e, sizeof e) != 0) {
                ok = false;
                s_diff(&r, "error", "", 0, "%s", e);
                snprintf(summary, sizeof summary, "not reconciled: %.400s", e);
            } else {
                snprintf(summary, sizeof summary, "%" PRIu64 " differences repaired: %" PRIu64
                         " rows without file, %" PRIu64 " files without row, %" PRIu64
                         " rows restored", r.no_file + r.no_row + r.restored, r.no_file,
                         r.no_row, r.restored);
            }
            snprintf(action, sizeof action, "%s reconcile", kinds[k]);
            admin_audit(c, actor, action, r.child, ok, summary);
            if (ok && r.no_file + r.no_row + r.restored > 0) {
                char msg[700];
                snprintf(msg, sizeof msg, "reconcile child %s %s: %s", r.child, kinds[k], summary);
                db_event(c, "system", "warning", r.idtxt, msg);
            }
        }
        if (!ok)
            failed++;
        log_info("reconcile child=%s done differences=%" PRIu64 "%s", r.child,
                 t->no_file + t->no_row + t->restored - before, ok ? "" : " (failed)");
    }
    t->failed = (unsigned)failed;
    PQclear(res);
    if (failed > 0) {
        snprintf(err, errlen, "%d of %u children could not be reconciled", failed, t->children);
        return -1;
    }
    return 0;
}
