/* admin_quarantine: operations on the quarantined and archived messages of every child
 * (R5.4) and their reconciliation with the index (R5.3), for the CLI now and the API later.
 * A message is named by its index row id (digits, shown by search) or its file id (32 hex).
 * Each operation reaches the child through a command (admin_command.h), so it fails with a
 * clear reason when the child is down, and is written to the audit log either way. A gone
 * file's row stays, state 'removed' with removed_at and removed_reason (008). Searching
 * is admin_stored_list (admin_log.h). */
#ifndef PORTCULLIS_ADMIN_QUARANTINE_H
#define PORTCULLIS_ADMIN_QUARANTINE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_Q_HEAD_BYTES (64u * 1024)    /* show / reconcile: head of the file read for headers */
#define ADMIN_Q_CHUNK (1u << 20)           /* download: bytes per fetch (under WIRE_MSG_MAX) */
#define ADMIN_RECONCILE_REPAIR_MAX 10000   /* differences repaired per child and store per run */
#define ADMIN_RECONCILE_FRESH_S 600        /* files younger than this may still be on their
                                            * way to the index: never taken for strays */
#define ADMIN_RECONCILE_PAGES_MAX 100000   /* listing pages per store (COMMAND_LIST_MAX each) */

/* Writes a downloaded chunk; 0 ok, -1 stop (err is the sink's to report). */
typedef int (*admin_sink_fn)(void *arg, const void *data, size_t len);

/* True for a row id (1..18 digits) or a file id (32 lowercase hex). */
bool admin_stored_ref_valid(const char *ref);
/* The index row: {id, child_id, child, area, kind, file_id, bucket, size, received_at, sender,
 * recipients, subject, verdicts, rule, msg_id, state, removed_reason, removed_at}. NULL with
 * err if there is none. */
json_t *admin_stored_get(PGconn *c, const char *kind, const char *ref, char *err, size_t errlen);
/* The row plus "headers": the message's header block as text, read from the child (a stored
 * message only). The row alone and -1 with err when the child could not give them. */
json_t *admin_stored_show(PGconn *c, const char *actor, const char *kind, const char *ref,
                          int *rc, char *err, size_t errlen);
/* The file, byte for byte, in chunks to sink; size gets its length. */
int admin_stored_download(PGconn *c, const char *actor, const char *kind, const char *ref,
                          admin_sink_fn sink, void *arg, uint64_t *size, char *err,
                          size_t errlen);
/* Quarantine only: the child delivers the file to its downstream MTA with the original
 * envelope and removes it; the row becomes removed (reason released). msg says what happened. */
int admin_stored_release(PGconn *c, const char *actor, const char *ref, char *msg, size_t msglen,
                         char *err, size_t errlen);
/* The child removes the file; the row becomes removed (reason deleted; reconcile if the file
 * was gone already). */
int admin_stored_delete(PGconn *c, const char *actor, const char *kind, const char *ref,
                        char *msg, size_t msglen, char *err, size_t errlen);

/* --- reconciliation (R5.3) ------------------------------------------------------------------ */
struct admin_reconcile_diff {
    const char *child, *kind;
    const char *what;      /* "no_file", "no_row", "restored", "error" */
    const char *file_id;   /* "" for "error" */
    int64_t row_id;        /* the row concerned (made, for no_row), 0 if none */
    const char *detail;    /* what was found and what was done */
};
typedef void (*admin_reconcile_cb)(void *arg, const struct admin_reconcile_diff *d);

struct admin_reconcile_totals {
    uint64_t files, no_file, no_row, restored;
    unsigned children, failed;
};

/* Compares each child's files with the index and repairs the index both ways: a row whose
 * file is gone is marked removed (reason reconcile); a file with no row gets a row (fields
 * from its headers); a row an earlier reconciliation marked removed whose file is there
 * again is 'stored' again. Every difference goes to cb (and
 * the log, an event per child with differences, the audit log). child NULL: every enrolled
 * child (only_up: those up, the others skipped silently); kind NULL: both stores.
 * 0 all reconciled, -1 some child failed (each failure also went to cb as "error"). */
int admin_reconcile(PGconn *c, const char *actor, const char *child, const char *kind,
                    bool only_up, admin_reconcile_cb cb, void *arg,
                    struct admin_reconcile_totals *t, char *err, size_t errlen);

#endif
