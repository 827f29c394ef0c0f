/* admin_quarantine: see admin_quarantine.h (show, download, release, delete; the
 * reconciliation is admin_reconcile.c). The index row says which child holds the file and
 * where (area, bucket); the command carries that, so the child finds the file without a
 * search. The row's state changes only on the child's "done". */
#include "admin/admin_quarantine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_command.h"
#include "db/db.h"
#include "storepath.h"
#include "util.h"

#define ADMIN_Q_TIME(col) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

bool admin_stored_ref_valid(const char *ref)
{
    size_t n = ref != NULL ? strlen(ref) : 0;

    if (n >= 1 && n <= 18 && strspn(ref, "0123456789") == n && ref[0] != '0')
        return true;
    return storepath_file_id_valid(ref);
}

json_t *admin_stored_get(PGconn *c, const char *kind, const char *ref, char *err, size_t errlen)
{
    bool by_id = ref != NULL && strlen(ref) <= 18;
    const char *p[] = { kind, ref };
    PGresult *r;
    json_t *row;
    json_error_t je;

    if (!admin_stored_ref_valid(ref)) {
        snprintf(err, errlen, "'%.64s' is neither an index id nor a file id (32 hex digits)",
                 ref != NULL ? ref : "");
        return NULL;
    }
    r = db_query(c, by_id
                 ? "SELECT jsonb_build_object('id', id, 'child_id', child_id, 'child', child, "
                   "'area', area, 'kind', kind, 'file_id', file_id, 'bucket', bucket, 'size', size, "
                   "'received_at', " ADMIN_Q_TIME("received_at") ", 'sender', sender, "
                   "'recipients', to_jsonb(recipients), 'subject', subject, 'verdicts', verdicts, "
                   "'rule', rule, 'msg_id', msg_id, 'state', state, 'removed_reason', "
                   "removed_reason, 'removed_at', " ADMIN_Q_TIME("removed_at") ")::text "
                   "FROM stored_messages WHERE kind = $1 AND id = $2::bigint"
                 : "SELECT jsonb_build_object('id', id, 'child_id', child_id, 'child', child, "
                   "'area', area, 'kind', kind, 'file_id', file_id, 'bucket', bucket, 'size', size, "
                   "'received_at', " ADMIN_Q_TIME("received_at") ", 'sender', sender, "
                   "'recipients', to_jsonb(recipients), 'subject', subject, 'verdicts', verdicts, "
                   "'rule', rule, 'msg_id', msg_id, 'state', state, 'removed_reason', "
                   "removed_reason, 'removed_at', " ADMIN_Q_TIME("removed_at") ")::text "
                   "FROM stored_messages WHERE kind = $1 AND file_id = $2 LIMIT 2",
                 2, p, err, errlen);
    if (r == NULL)
        return NULL;
    if (PQntuples(r) != 1) {
        if (PQntuples(r) == 0)
            snprintf(err, errlen, "no %s message %s in the index", kind, ref);
        else
            snprintf(err, errlen, "file id %s is on more than one child: name it by its index "
                     "id (see `%s search`)", ref, kind);
        PQclear(r);
        return NULL;
    }
    row = json_loads(PQgetvalue(r, 0, 0), 0, &je);
    PQclear(r);
    if (row == NULL)
        snprintf(err, errlen, "index row unreadable: %s", je.text);
    return row;
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

/* One audit row: action "<kind> <op>", target child:kind:file_id (id N). */
static void s_audit(PGconn *c, const char *actor, const json_t *row, const char *op, bool ok,
                    const char *detail)
{
    char action[64], target[256];

    snprintf(action, sizeof action, "%s %s", s_str(row, "kind"), op);
    snprintf(target, sizeof target, "%s:%s:%s (id %" JSON_INTEGER_FORMAT ")", s_str(row, "child"),
             s_str(row, "kind"), s_str(row, "file_id"),
             json_integer_value(json_object_get(row, "id")));
    admin_audit(c, actor, action, target, ok, detail);
}


/* The row, which must still be stored: its file is on the child. */
static json_t *s_stored_row(PGconn *c, const char *kind, const char *ref, char *err,
                            size_t errlen)
{
    json_t *row = admin_stored_get(c, kind, ref, err, errlen);

    if (row != NULL && strcmp(s_str(row, "state"), "stored") != 0) {
        snprintf(err, errlen, "%s message %s is %s (%s): its file is no longer on child %s",
                 kind, ref, s_str(row, "state"), s_str(row, "removed_reason"), s_str(row, "child"));
        json_decref(row);
        return NULL;
    }
    return row;
}

static void s_cmd_for(const json_t *row, const char *kind, struct admin_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->kind = kind;
    cmd->store = s_str(row, "kind");
    cmd->file_id = s_str(row, "file_id");
    cmd->area = s_str(row, "area");
    cmd->bucket = s_str(row, "bucket");
}

static int64_t s_child_id(const json_t *row)
{
    return (int64_t)json_integer_value(json_object_get(row, "child_id"));
}

/* Marks the row removed with a reason (008's columns), as the child's StoredRemoved report
 * will; whichever comes first wins, the other finds it marked already. */
static void s_set_removed(PGconn *c, const json_t *row, const char *reason)
{
    char id[32], err[256];
    const char *p[] = { id, reason };

    snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(row, "id")));
    db_exec(c, "UPDATE stored_messages SET state = 'removed', removed_at = now(), "
               "removed_reason = $2 WHERE id = $1::bigint AND removed_at IS NULL",
            2, p, err, sizeof err);
}

json_t *admin_stored_show(PGconn *c, const char *actor, const char *kind, const char *ref,
                          int *rc, char *err, size_t errlen)
{
    json_t *row = admin_stored_get(c, kind, ref, err, errlen);
    struct admin_cmd cmd;
    struct admin_cmd_result res;

    *rc = -1;
    if (row == NULL)
        return NULL;
    *rc = 0;
    if (strcmp(s_str(row, "state"), "stored") == 0) {
        s_cmd_for(row, "fetch", &cmd);
        cmd.length = ADMIN_Q_HEAD_BYTES;
        if (admin_command_run(c, s_child_id(row), actor, &cmd, &res, err, errlen) == 0) {
            /* the header block: up to the first empty line */
            size_t n = res.len;
            for (size_t i = 0; i + 1 < res.len; i++) {
                if (res.data[i] == '\n' && (res.data[i + 1] == '\n' ||
                                            (res.data[i + 1] == '\r' && i + 2 < res.len &&
                                             res.data[i + 2] == '\n'))) {
                    n = i + 1;
                    break;
                }
            }
            for (size_t i = 0; i < n; i++) /* text for JSON: no control bytes but line ends */
                if ((res.data[i] < 0x20 && res.data[i] != '\n' && res.data[i] != '\t') ||
                    res.data[i] >= 0x7f)
                    res.data[i] = res.data[i] == '\r' ? '\r' : '?';
            json_object_set_new(row, "headers", json_stringn((const char *)res.data, n));
        } else {
            *rc = -1;
        }
        admin_cmd_result_clear(&res);
    }
    s_audit(c, actor, row, "show", *rc == 0, *rc == 0 ? "" : err);
    return row;
}

int admin_stored_download(PGconn *c, const char *actor, const char *kind, const char *ref,
                          admin_sink_fn sink, void *arg, uint64_t *size, char *err,
                          size_t errlen)
{
    json_t *row = s_stored_row(c, kind, ref, err, errlen);
    struct admin_cmd cmd;
    struct admin_cmd_result res;
    uint64_t offset = 0, total = UINT64_MAX;
    char detail[64];
    int rc = 0;

    *size = 0;
    if (row == NULL)
        return -1;
    s_cmd_for(row, "fetch", &cmd);
    cmd.length = ADMIN_Q_CHUNK;
    while (rc == 0 && offset < total) {
        cmd.offset = offset;
        if (admin_command_run(c, s_child_id(row), actor, &cmd, &res, err, errlen) != 0) {
            rc = -1;
        } else if (total != UINT64_MAX && res.total_size != total) {
            snprintf(err, errlen, "the file changed size on child %s while it was read",
                     s_str(row, "child"));
            rc = -1;
        } else if (res.len == 0 && res.total_size > offset) {
            snprintf(err, errlen, "child %s sent an empty chunk at offset %" PRIu64,
                     s_str(row, "child"), offset);
            rc = -1;
        } else {
            total = res.total_size;
            if (res.len > 0 && sink(arg, res.data, res.len) != 0) {
                snprintf(err, errlen, "the download could not be written");
                rc = -1;
            }
            offset += res.len;
        }
        admin_cmd_result_clear(&res);
    }
    *size = offset;
    snprintf(detail, sizeof detail, "%" PRIu64 " bytes", offset);
    s_audit(c, actor, row, "download", rc == 0, rc == 0 ? detail : err);
    json_decref(row);
    return rc;
}

int admin_stored_release(PGconn *c, const char *actor, const char *ref, char *msg, size_t msglen,
                         char *err, size_t errlen)
{
    json_t *row = s_stored_row(c, "quarantine", ref, err, errlen);
    struct admin_cmd cmd;
    struct admin_cmd_result res;
    int rc;

    if (row == NULL)
        return -1;
    if (json_array_size(json_object_get(row, "recipients")) == 0) {
        snprintf(err, errlen, "the index has no recipients for %s: nothing to release to", ref);
        s_audit(c, actor, row, "release", false, err);
        json_decref(row);
        return -1;
    }
    s_cmd_for(row, "release", &cmd);
    cmd.sender = s_str(row, "sender");
    cmd.recipients = json_object_get(row, "recipients");
    rc = admin_command_run(c, s_child_id(row), actor, &cmd, &res, err, errlen);
    if (rc == 0) {
        s_set_removed(c, row, "released");
        snprintf(msg, msglen, "released %s from child %s to %zu recipient(s) through its "
                 "downstream MTA", s_str(row, "file_id"), s_str(row, "child"),
                 json_array_size(cmd.recipients));
    }
    s_audit(c, actor, row, "release", rc == 0, rc == 0 ? msg : err);
    admin_cmd_result_clear(&res);
    json_decref(row);
    return rc;
}

int admin_stored_delete(PGconn *c, const char *actor, const char *kind, const char *ref,
                        char *msg, size_t msglen, char *err, size_t errlen)
{
    json_t *row = s_stored_row(c, kind, ref, err, errlen);
    struct admin_cmd cmd;
    struct admin_cmd_result res;
    int rc;

    if (row == NULL)
        return -1;
    s_cmd_for(row, "delete", &cmd);
    rc = admin_command_run(c, s_child_id(row), actor, &cmd, &res, err, errlen);
    if (rc == 0) {
        s_set_removed(c, row, "deleted");
        snprintf(msg, msglen, "deleted %s from child %s", s_str(row, "file_id"),
                 s_str(row, "child"));
    } else if (strcmp(res.state, "failed") == 0 &&
               json_is_true(json_object_get(res.detail, "not_found"))) {
        /* Gone already (by hand?): the index follows, as a reconciliation would. */
        s_set_removed(c, row, "reconcile");
        snprintf(msg, msglen, "file %s was already gone from child %s; the index now says "
                 "removed (reconcile)", s_str(row, "file_id"), s_str(row, "child"));
        rc = 0;
    }
    s_audit(c, actor, row, "delete", rc == 0, rc == 0 ? msg : err);
    admin_cmd_result_clear(&res);
    json_decref(row);
    return rc;
}
