/* admin_command: see admin_command.h. The row is the only shared state between the caller and
 * the daemon, so a caller can die, the daemon restart, or the child vanish, and every command
 * still ends in a final state with a reason: the daemon expires rows past their deadline,
 * and a caller that hears nothing marks its own row after ADMIN_COMMAND_GRACE_S more. */
#include "admin/admin_command.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "db/db.h"
#include "link.h"
#include "log.h"
#include "util.h"

/* As admin_status: up while the last contact is younger than the liveness window plus one
 * interval of slack for the throttled last_seen writes. */
#define ADMIN_CMD_UP_WINDOW_MS (LINK_HEARTBEAT_MS * (LINK_LIVENESS + 1))

json_t *admin_command_args(const struct admin_cmd *cmd)
{
    json_t *a = json_object();

#define S_SET(k) if (cmd->k != NULL) json_object_set_new(a, #k, json_string(cmd->k))
    S_SET(store);
    S_SET(file_id);
    S_SET(area);
    S_SET(bucket);
    S_SET(sender);
    S_SET(cursor);
#undef S_SET
    if (cmd->recipients != NULL)
        json_object_set(a, "recipients", (json_t *)cmd->recipients);
    if (cmd->offset != 0)
        json_object_set_new(a, "offset", json_integer((json_int_t)cmd->offset));
    if (cmd->length != 0)
        json_object_set_new(a, "length", json_integer((json_int_t)cmd->length));
    return a;
}

void admin_cmd_result_clear(struct admin_cmd_result *res)
{
    json_decref(res->detail);
    free(res->data);
    memset(res, 0, sizeof *res);
}

void admin_audit(PGconn *c, const char *actor, const char *action, const char *target, bool ok,
                 const char *detail)
{
    const char *p[] = { actor, action, target != NULL ? target : "", ok ? "ok" : "failed",
                        detail != NULL ? detail : "" };
    char err[512];

    if (db_exec(c, "INSERT INTO audit_log (actor, action, target, result, detail) "
                   "VALUES ($1, $2, $3, $4, left($5, 4000))", 5, p, err, sizeof err) != 0)
        log_err("audit record not written (%s %s %s): %s", actor, action, target, err);
}

/* The child's state as the status shows it; fails the command at once if it is down. */
static int s_child_up(PGconn *c, int64_t child_id, char *name, size_t namelen, char *err,
                      size_t errlen)
{
    char idtxt[32], window[48];
    const char *p[] = { idtxt, window };
    PGresult *r;
    int rc = 0;

    snprintf(idtxt, sizeof idtxt, "%" PRId64, child_id);
    snprintf(window, sizeof window, "%d milliseconds", ADMIN_CMD_UP_WINDOW_MS);
    r = db_query(c, "SELECT name, enrolment = 'enrolled' AND connected AND "
                    " last_seen > now() - $2::interval, "
                    " coalesce(to_char(last_seen AT TIME ZONE 'UTC', "
                    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'never') "
                    "FROM children WHERE id = $1::bigint", 2, p, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) != 1) {
        snprintf(err, errlen, "child id %s is not known", idtxt);
        rc = -1;
    } else {
        strlcpy_p(name, PQgetvalue(r, 0, 0), namelen);
        if (PQgetvalue(r, 0, 1)[0] != 't') {
            snprintf(err, errlen, "child %s is down (last seen %s); the operation can be "
                     "retried when it is back", name, PQgetvalue(r, 0, 2));
            rc = 1;
        }
    }
    PQclear(r);
    return rc;
}

/* Reads the row; 1 final (res filled, err set unless done), 0 still open, -1 error. */
static int s_read(PGconn *c, struct admin_cmd_result *res, char *err, size_t errlen)
{
    char idtxt[32];
    const char *p[] = { idtxt };
    PGresult *r;
    const char *state;

    snprintf(idtxt, sizeof idtxt, "%" PRId64, res->id);
    r = db_query(c, "SELECT state, coalesce(error, ''), detail::text, data, "
                    " coalesce(total_size, 0) FROM commands WHERE id = $1::bigint",
                 1, p, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) != 1) {
        snprintf(err, errlen, "command %s vanished (its child was removed?)", idtxt);
        PQclear(r);
        return -1;
    }
    state = PQgetvalue(r, 0, 0);
    if (strcmp(state, "pending") == 0 || strcmp(state, "sent") == 0) {
        PQclear(r);
        return 0;
    }
    strlcpy_p(res->state, state, sizeof res->state);
    if (!PQgetisnull(r, 0, 2)) {
        json_error_t je;
        res->detail = json_loads(PQgetvalue(r, 0, 2), JSON_DECODE_ANY, &je);
    }
    if (!PQgetisnull(r, 0, 3)) {
        size_t n = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 3), &n);
        if (raw != NULL) {
            res->data = xmalloc(n ? n : 1);
            memcpy(res->data, raw, n);
            res->len = n;
            PQfreemem(raw);
        }
    }
    parse_int64(PQgetvalue(r, 0, 4), (int64_t *)&res->total_size);
    if (strcmp(state, "done") != 0)
        snprintf(err, errlen, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    if (res->data != NULL) /* read once: the chunk need not stay in the table */
        db_exec(c, "UPDATE commands SET data = NULL WHERE id = $1::bigint", 1, p, err, errlen);
    return 1;
}

/* Waits for the row to become final, up to the deadline plus the grace. */
/* The connection may live on (an API worker's): stop listening and drop what queued up. */
static void s_unlisten(PGconn *c)
{
    PGnotify *n;
    char err[256];

    if (db_exec(c, "UNLISTEN " ADMIN_NOTIFY_COMMAND_DONE, 0, NULL, err, sizeof err) != 0)
        return;
    PQconsumeInput(c);
    while ((n = PQnotifies(c)) != NULL)
        PQfreemem(n);
}

static int s_wait(PGconn *c, int timeout_s, struct admin_cmd_result *res,
                  char *err, size_t errlen)
{
    uint64_t until = now_ms() + 1000u * (uint64_t)(timeout_s + ADMIN_COMMAND_GRACE_S);
    char idtxt[32], msg[512];
    int rc;

    snprintf(idtxt, sizeof idtxt, "%" PRId64, res->id);
    while ((rc = s_read(c, res, err, errlen)) == 0) {
        uint64_t now = now_ms();
        struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
        PGnotify *n;
        if (now >= until) {
            const char *p[] = { idtxt, msg };
            snprintf(msg, sizeof msg, "no answer about the command within %d s: is "
                     "portcullis-parent running? The operation can be retried", timeout_s);
            if (db_exec(c, "UPDATE commands SET state = 'timeout', finished_at = now(), "
                           "error = $2 WHERE id = $1::bigint AND state IN ('pending', 'sent')",
                        2, p, err, errlen) != 0)
                return -1;
            if ((rc = s_read(c, res, err, errlen)) != 0)
                break;
            snprintf(err, errlen, "%s", msg);
            return -1;
        }
        if (poll(&pfd, 1, (int)(until - now < ADMIN_COMMAND_POLL_MS ? until - now
                                                                     : ADMIN_COMMAND_POLL_MS)) < 0)
            continue;
        if (PQconsumeInput(c) == 0) {
            snprintf(err, errlen, "database connection lost: %s", PQerrorMessage(c));
            return -1;
        }
        while ((n = PQnotifies(c)) != NULL)
            PQfreemem(n); /* any finished command: read ours again (cheap) */
    }
    if (rc < 0)
        return -1;
    return strcmp(res->state, "done") == 0 ? 0 : -1;
}

int admin_command_run(PGconn *c, int64_t child_id, const char *actor, const struct admin_cmd *cmd,
                      struct admin_cmd_result *res, char *err, size_t errlen)
{
    char idtxt[32], tmo[16], name[64] = "", down[512];
    settings_t *s;
    json_t *args;
    char *argtxt;
    int timeout_s, up, rc;
    PGresult *r;

    memset(res, 0, sizeof *res);
    if ((s = admin_settings_effective(c, err, errlen)) == NULL)
        return -1;
    timeout_s = (int)settings_int(s, SETTING_CLUSTER_COMMAND_TIMEOUT_S);
    settings_free(&s);
    if ((up = s_child_up(c, child_id, name, sizeof name, down, sizeof down)) < 0) {
        snprintf(err, errlen, "%s", down);
        return -1;
    }
    if (db_exec(c, "LISTEN " ADMIN_NOTIFY_COMMAND_DONE, 0, NULL, err, errlen) != 0)
        return -1;
    snprintf(idtxt, sizeof idtxt, "%" PRId64, child_id);
    snprintf(tmo, sizeof tmo, "%d", timeout_s);
    args = admin_command_args(cmd);
    argtxt = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    {
        /* A child already known to be down: the row records the attempt, failed at once. */
        const char *p[] = { idtxt, cmd->kind, argtxt, actor, tmo, up ? "failed" : "pending",
                            up ? down : NULL };
        r = db_query(c, "WITH i AS (INSERT INTO commands (child_id, kind, args, actor, deadline,"
                        "  state, error, finished_at) VALUES ($1::bigint, $2, $3::jsonb, $4, "
                        "  now() + $5::int * interval '1 second', $6, $7, "
                        "  CASE WHEN $6 = 'failed' THEN now() END) RETURNING id, state) "
                        "SELECT id, CASE WHEN state = 'pending' "
                        " THEN pg_notify('" ADMIN_NOTIFY_COMMAND "', id::text) END FROM i",
                     7, p, err, errlen);
    }
    free(argtxt);
    if (r == NULL) {
        s_unlisten(c);
        return -1;
    }
    parse_int64(PQgetvalue(r, 0, 0), &res->id);
    PQclear(r);
    if (up) {
        s_unlisten(c);
        strlcpy_p(res->state, "failed", sizeof res->state);
        snprintf(err, errlen, "%s", down);
        return -1;
    }
    rc = s_wait(c, timeout_s, res, err, errlen);
    s_unlisten(c);
    return rc;
}

int admin_child_command(PGconn *c, const char *child, const char *kind, const char *actor,
                        json_t **detail, char *err, size_t errlen)
{
    static const char *const kinds[] = { "flush", "reload", "purge", "apply_mta" };
    struct admin_cmd cmd = { .kind = kind };
    struct admin_cmd_result res;
    const char *p[] = { child };
    char action[48], *txt = NULL;
    bool known = false;
    int64_t id = 0;
    PGresult *r;
    int rc;

    *detail = NULL;
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        known = known || strcmp(kind, kinds[i]) == 0;
    if (!known) {
        snprintf(err, errlen, "'%s' is not a command to a child (flush, reload, purge, "
                 "apply_mta)", kind);
        return -1;
    }
    r = db_query(c, "SELECT id FROM children WHERE name = $1", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 1)
        parse_int64(PQgetvalue(r, 0, 0), &id);
    PQclear(r);
    if (id == 0) {
        snprintf(err, errlen, "child '%s' is not known (see `portcullis child list`)", child);
        return -1;
    }
    rc = admin_command_run(c, id, actor, &cmd, &res, err, errlen);
    snprintf(action, sizeof action, "child %s", kind);
    if (rc == 0 && res.detail != NULL)
        txt = json_dumps(res.detail, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    admin_audit(c, actor, action, child, rc == 0, rc == 0 ? (txt != NULL ? txt : "") : err);
    free(txt);
    if (rc == 0) {
        *detail = res.detail;
        res.detail = NULL;
    }
    admin_cmd_result_clear(&res);
    return rc;
}
