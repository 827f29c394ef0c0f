/* cmdroute: see cmdroute.h. Statements touch only open rows (a partial index covers them);
 * an answer is accepted only from the child the command was sent to and only while the row is
 * 'sent', so a late or forged answer changes nothing. */
#include "cluster/cmdroute.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_command.h"
#include "db/db.h"
#include "log.h"
#include "util.h"

struct cmdroute {
    cmdroute_send_fn send;
    void *arg;
    uint64_t next_cleanup_ms;
};

cmdroute_t *cmdroute_new(cmdroute_send_fn send, void *arg)
{
    cmdroute_t *r = xcalloc(1, sizeof *r);

    r->send = send;
    r->arg = arg;
    return r;
}

void cmdroute_free(cmdroute_t **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    free(*rp);
    *rp = NULL;
}

static const char *s_jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static void s_finish(PGconn *db, const char *id, const char *state, const char *error)
{
    const char *p[] = { id, state, error };
    char err[512];

    if (db_exec(db, "WITH u AS (UPDATE commands SET state = $2, error = $3, finished_at = now() "
                    " WHERE id = $1::bigint AND state IN ('pending', 'sent') RETURNING id) "
                    "SELECT pg_notify('" ADMIN_NOTIFY_COMMAND_DONE "', id::text) FROM u",
                3, p, err, sizeof err) != 0)
        log_err("command id=%s not finished: %s", id, err);
}

/* One pending row → a Command to its child. */
static void s_send_row(cmdroute_t *r, PGconn *db, PGresult *res, int i)
{
    const char *id = PQgetvalue(res, i, 0), *name = PQgetvalue(res, i, 2);
    Portcullis__Command cmd = PORTCULLIS__COMMAND__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;
    json_error_t je;
    json_t *args = json_loads(PQgetvalue(res, i, 4), 0, &je), *rc;
    int64_t child_id = 0, remaining = 0, cid = 0;
    char **rcpts = NULL, err[512], msg[512];
    size_t i_r;

    parse_int64(id, &cid);
    parse_int64(PQgetvalue(res, i, 1), &child_id);
    parse_int64(PQgetvalue(res, i, 5), &remaining);
    if (args == NULL) {
        s_finish(db, id, "failed", "the command's arguments are not valid JSON");
        return;
    }
    cmd.id = (uint64_t)cid;
    cmd.kind = (char *)PQgetvalue(res, i, 3);
    cmd.file_id = (char *)s_jstr(args, "file_id");
    cmd.store = (char *)s_jstr(args, "store");
    cmd.area = (char *)s_jstr(args, "area");
    cmd.bucket = (char *)s_jstr(args, "bucket");
    cmd.sender = (char *)s_jstr(args, "sender");
    cmd.cursor = (char *)s_jstr(args, "cursor");
    cmd.offset = (uint64_t)json_integer_value(json_object_get(args, "offset"));
    cmd.length = (uint32_t)json_integer_value(json_object_get(args, "length"));
    cmd.timeout_ms = remaining > 0 && remaining < UINT32_MAX ? (uint32_t)remaining : 1;
    rc = json_object_get(args, "recipients");
    if (json_array_size(rc) > WIRE_COMMAND_RCPT_MAX) {
        snprintf(msg, sizeof msg, "more than %d recipients: release them in smaller groups",
                 WIRE_COMMAND_RCPT_MAX);
        s_finish(db, id, "failed", msg);
        json_decref(args);
        return;
    }
    if (json_array_size(rc) > 0) {
        rcpts = xcalloc(json_array_size(rc), sizeof *rcpts);
        for (i_r = 0; i_r < json_array_size(rc); i_r++)
        {
            const char *v = json_string_value(json_array_get(rc, i_r));
            rcpts[i_r] = (char *)(v != NULL ? v : "");
        }
        cmd.n_recipients = json_array_size(rc);
        cmd.recipients = rcpts;
    }
    env.body_case = PORTCULLIS__ENVELOPE__BODY_COMMAND;
    env.command = &cmd;
    if (r->send(r->arg, child_id, &env) == 0) {
        const char *p[] = { id };
        if (db_exec(db, "UPDATE commands SET state = 'sent', sent_at = now() "
                        "WHERE id = $1::bigint AND state = 'pending'", 1, p, err, sizeof err) != 0)
            log_err("command id=%s: %s", id, err);
        log_info("command id=%s %s sent to child %s", id, cmd.kind, name);
    } else {
        snprintf(msg, sizeof msg, "child %s is down (last seen %s); the operation can be retried "
                 "when it is back", name, PQgetvalue(res, i, 6));
        log_warn("command id=%s %s: %s", id, cmd.kind, msg);
        s_finish(db, id, "failed", msg);
    }
    free(rcpts);
    json_decref(args);
}

void cmdroute_dispatch(cmdroute_t *r, PGconn *db)
{
    char err[512], lim[16];
    const char *p[] = { lim };
    PGresult *res;

    snprintf(lim, sizeof lim, "%d", CMDROUTE_BATCH);
    res = db_query(db, "SELECT c.id, c.child_id, ch.name, c.kind, c.args::text, "
                       " greatest(1, extract(epoch FROM c.deadline - now()) * 1000)::bigint, "
                       " coalesce(to_char(ch.last_seen AT TIME ZONE 'UTC', "
                       "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'never') "
                       "FROM commands c JOIN children ch ON ch.id = c.child_id "
                       "WHERE c.state = 'pending' AND c.deadline > now() "
                       "ORDER BY c.id LIMIT $1::int", 1, p, err, sizeof err);
    if (res == NULL) {
        log_err("pending commands not read: %s", err);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        s_send_row(r, db, res, i);
    PQclear(res);
}

void cmdroute_tick(cmdroute_t *r, PGconn *db)
{
    char err[512], keep[32];
    const char *p[] = { keep };
    PGresult *res;

    res = db_query(db, "WITH u AS (UPDATE commands c SET state = 'timeout', finished_at = now(), "
                       " error = format('child %s did not answer within %s s; the operation may "
                       "still complete there: check before retrying', "
                       "  (SELECT name FROM children WHERE id = c.child_id), "
                       "  round(extract(epoch FROM c.deadline - c.created_at))) "
                       " WHERE state IN ('pending', 'sent') AND deadline <= now() "
                       " RETURNING id, kind) "
                       "SELECT id, kind, pg_notify('" ADMIN_NOTIFY_COMMAND_DONE "', id::text) FROM u",
                   0, NULL, err, sizeof err);
    if (res == NULL) {
        log_err("command deadlines not checked: %s", err);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        log_warn("command id=%s %s timed out", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    PQclear(res);
    if (now_ms() >= r->next_cleanup_ms) {
        r->next_cleanup_ms = now_ms() + CMDROUTE_CLEANUP_MS;
        snprintf(keep, sizeof keep, "%d seconds", CMDROUTE_DATA_KEEP_S);
        if (db_exec(db, "UPDATE commands SET data = NULL WHERE data IS NOT NULL "
                        "AND finished_at < now() - $1::interval", 1, p, err, sizeof err) != 0)
            log_err("old command data not cleared: %s", err);
    }
}

void cmdroute_reply(cmdroute_t *r, PGconn *db, int64_t child_id, const char *child_name,
                    const Portcullis__CommandReply *rep)
{
    char id[32], cid[32], total[32], err[512];
    char *detail = NULL;
    const char *p[7];
    int lens[7] = { 0 }, fmts[7] = { 0 };
    PGresult *res;

    (void)r;
    snprintf(id, sizeof id, "%" PRIu64, rep->id);
    snprintf(cid, sizeof cid, "%" PRId64, child_id);
    snprintf(total, sizeof total, "%" PRIu64, rep->total_size);
    if (rep->detail != NULL && rep->detail[0] != '\0') {
        /* Stored as jsonb: anything else the child said is kept as a JSON string. */
        json_error_t je;
        json_t *j = json_loads(rep->detail, JSON_DECODE_ANY, &je);
        if (j == NULL)
            j = json_string(rep->detail);
        detail = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(j);
    }
    p[0] = id;
    p[1] = cid;
    p[2] = rep->ok ? "done" : "failed";
    p[3] = rep->ok || rep->error == NULL || rep->error[0] == '\0'
               ? (rep->ok ? NULL : "the child gave no reason")
               : rep->error;
    p[4] = detail;
    p[5] = rep->data.len > 0 ? (const char *)rep->data.data : NULL;
    lens[5] = (int)rep->data.len;
    fmts[5] = 1; /* binary bytea: a chunk travels as is */
    p[6] = total;
    res = PQexecParams(db, "WITH u AS (UPDATE commands SET state = $3, error = $4, "
                           " detail = $5::jsonb, data = $6, total_size = $7::bigint, "
                           " finished_at = now() "
                           " WHERE id = $1::bigint AND child_id = $2::bigint AND state = 'sent' "
                           " RETURNING id) "
                           "SELECT pg_notify('" ADMIN_NOTIFY_COMMAND_DONE "', id::text) FROM u",
                       7, NULL, p, lens, fmts, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        strlcpy_p(err, PQresultErrorMessage(res), sizeof err);
        log_err("answer of child %s to command id=%s not recorded: %s", child_name, id, err);
    } else if (PQntuples(res) == 0) {
        log_warn("answer of child %s to command id=%s ignored: not a command it has open "
                 "(timed out already?)", child_name, id);
    } else {
        log_info("command id=%s answered by child %s: %s%s%s", id, child_name,
                 rep->ok ? "ok" : "failed", rep->ok ? "" : ": ", rep->ok ? "" : p[3]);
    }
    PQclear(res);
    free(detail);
}
