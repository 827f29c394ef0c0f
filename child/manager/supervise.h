/* supervise: the manager's watch over its scan service beyond fork and reap (R1.5, R1.6):
 * records "scan service stopped" / "scan service started" for the parent, flushes the upstream
 * MTA's queue after every start once the service accepts (its first ScanStats), and checks it
 * every supervise.check_interval_s — one that has sent no ScanStats for too long is hung and is
 * killed, so the usual restart follows. */
#ifndef PORTCULLIS_SUPERVISE_H
#define PORTCULLIS_SUPERVISE_H

#include <stdbool.h>

#include "manager/command.h"
#include "manager/mreport.h"
#include "manager/scan_proc.h"
#include "settings.h"

#define SUPERVISE_HUNG_CHECKS 2         /* silent this many check intervals: hung… */
#define SUPERVISE_HUNG_MIN_MS 10000     /* …but never under 10 ScanStats intervals (1 s each) */
#define SUPERVISE_START_GRACE_MS 300000 /* time to first ScanStats: signature loading may be slow */

typedef struct supervise supervise_t;

struct mta_local;
/* scan, mrep and local (child.conf's MTA commands) are borrowed and outlive the supervisor. */
supervise_t *supervise_new(struct scan_proc *scan, mreport_t *mrep,
                           const struct mta_local *local);
/* Stops the scan service (graceful, as scan_proc_stop), records it, ends a running flush. */
void supervise_destroy(supervise_t **svp);

/* A ScanStats arrived (call after scan->stats is updated): the first since a start means the
 * service accepts — "scan service started", and a flush is due. */
void supervise_on_stats(supervise_t *sv);
/* On SIGCHLD: reaps the scan service if it exited and records how. True if it had exited. */
bool supervise_reap(supervise_t *sv);
/* Every loop turn: flush progress, the periodic check. settings: those in force. */
void supervise_tick(supervise_t *sv, const settings_t *settings);

/* The parent's commands (R7.4): "flush" runs mta.adapter's queue flush now and answers when it
 * has ended (a flush already running after a start answers for it); "reload" has the scan
 * service reload its signatures. *settings is the manager's pointer to the settings in force
 * (replaced by each configuration); cmd and settings outlive the supervisor. */
void supervise_commands(supervise_t *sv, command_t *cmd, settings_t *const *settings);

#endif
