/* mreport: the manager's own report spool (state_dir/mspool, R1.6, R7.3). What the manager
 * itself does — scan service stopped/started, upstream queue flushed, MTA settings applied,
 * files purged, deleted or released — is recorded here, synced before the call returns, and
 * shipped to the parent by a second report_ship exactly like the scan service's spool (the
 * parent keys records by (child, spool epoch, seq), so the two spools never collide).
 * One writer: the manager's thread. */
#ifndef PORTCULLIS_MREPORT_H
#define PORTCULLIS_MREPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "portcullis.pb-c.h"

typedef struct mreport mreport_t;

/* Opens (creating if needed) the spool directory. NULL with err filled. */
mreport_t *mreport_open(const char *dir, char *err, size_t errlen);
void mreport_close(mreport_t **rp);

/* A system event (category "system", "quota", …; severity "info", "warning", "error").
 * notify: the parent also mails the administrator with this subject (notify.* settings).
 * 0 durable, -1 not recorded (logged; the event is in the log line at least). */
int mreport_event(mreport_t *r, const char *category, const char *severity, bool notify,
                  const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A stored file is gone: the parent updates its index (reason: quota, retention, deleted,
 * released, reconcile). Appended, not yet synced: a purge of many files calls mreport_sync
 * once at the end. 0 appended, -1 not recorded (logged). */
int mreport_removed(mreport_t *r, const char *kind, const char *file_id, const char *reason);
int mreport_sync(mreport_t *r);

/* Appends any record (sets its seq) and syncs. */
int mreport_append(mreport_t *r, Portcullis__Report *rec);

#endif
