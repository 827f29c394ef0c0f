/* admin_command: the parent's commands to children (R7.4) as one database row each, and the
 * audit log (R5.4). A caller (CLI, API, the parent's own scheduler) inserts the row and
 * NOTIFYs ADMIN_NOTIFY_COMMAND; the parent daemon (cluster/cmdroute.c) sends it to the child
 * or fails it at once if the child is down, and records the answer; the caller waits on
 * ADMIN_NOTIFY_COMMAND_DONE up to the deadline (cluster.command_timeout_s). Blocking: never
 * call from the daemon's loop. */
#ifndef PORTCULLIS_ADMIN_COMMAND_H
#define PORTCULLIS_ADMIN_COMMAND_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_NOTIFY_COMMAND "portcullis_command"           /* a command row is pending */
#define ADMIN_NOTIFY_COMMAND_DONE "portcullis_command_done" /* payload: id of a finished row */
#define ADMIN_COMMAND_GRACE_S 3     /* past the deadline, the caller gives up by itself */
#define ADMIN_COMMAND_POLL_MS 1000  /* re-read the row this often even without a NOTIFY */

/* What to send; NULL / 0 fields are left out. */
struct admin_cmd {
    const char *kind;               /* release, delete, fetch, reconcile, purge, … */
    const char *store, *file_id, *area, *bucket, *sender, *cursor;
    const json_t *recipients;       /* array of strings (release) */
    uint64_t offset;                /* fetch */
    uint32_t length;                /* fetch: at most this many bytes */
};

struct admin_cmd_result {
    int64_t id;                     /* the commands row, 0 if none was made */
    char state[16];                 /* done, failed, timeout */
    json_t *detail;                 /* the child's detail, owned (may be NULL) */
    uint8_t *data;                  /* fetch: owned */
    size_t len;
    uint64_t total_size;
};

/* Runs one command on a child and waits for its outcome. 0: the child did it (res->detail,
 * res->data); -1 with err: the child refused or failed it (its reason), it is down, or no
 * answer came in time (each said so). Free res with admin_cmd_result_clear. */
int admin_command_run(PGconn *c, int64_t child_id, const char *actor, const struct admin_cmd *cmd,
                      struct admin_cmd_result *res, char *err, size_t errlen);
void admin_cmd_result_clear(struct admin_cmd_result *res);
/* A command to a whole child by its name (R7.4): kind "flush", "reload", "purge" or
 * "apply_mta"; audited as "child <kind>" on the child. 0: done (*detail: the child's, owned,
 * may be NULL); -1 with err: unknown child or kind, refused or failed (the child's reason), the
 * child is down, or no answer in time. */
int admin_child_command(PGconn *c, const char *child, const char *kind, const char *actor,
                        json_t **detail, char *err, size_t errlen);
/* A command's arguments as stored in commands.args (the daemon reads them back). */
json_t *admin_command_args(const struct admin_cmd *cmd);

/* One audit_log row; logged, never fatal to the operation it records. */
void admin_audit(PGconn *c, const char *actor, const char *action, const char *target, bool ok,
                 const char *detail);

#endif
