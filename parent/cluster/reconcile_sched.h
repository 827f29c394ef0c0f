/* reconcile_sched: the parent's periodic reconciliation (R5.3): a thread with its own
 * database connection runs admin_reconcile for every connected child each
 * reconcile.interval_s, counted from the last scheduled run recorded in the audit log (so a
 * restarted parent keeps the rhythm). The commands it sends go through the daemon's loop
 * like an administrator's. */
#ifndef PORTCULLIS_RECONCILE_SCHED_H
#define PORTCULLIS_RECONCILE_SCHED_H

#include <stddef.h>

#define RECONCILE_SCHED_ACTOR "system"
#define RECONCILE_SCHED_CHECK_MS 1000     /* how often the thread looks at the clock */
#define RECONCILE_SCHED_DB_RETRY_MS 10000 /* reconnect interval while the database is away */

typedef struct reconcile_sched reconcile_sched_t;

/* NULL with err filled if the thread cannot start. */
reconcile_sched_t *reconcile_sched_start(const char *dsn, char *err, size_t errlen);
/* Stops after the reconciliation in progress, if any (its commands time out at worst). */
void reconcile_sched_stop(reconcile_sched_t **sp);

#endif
