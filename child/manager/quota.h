/* quota: the child's disk quotas and retention purge (R5.5, R5.7-R5.13). The manager's loop
 * calls quota_tick about every 200 ms: it reads the exact usage counters (O(1), usage.h) once
 * a second, notifies once per crossing of the notification threshold, and schedules work —
 * a check (and purge) every quota.check_interval_s or at once when usage passes the quota, a
 * verification walk every quota.verify_interval_s, the retention purge daily at
 * retention.purge_time. The work itself (walks and deletions over up to millions of files)
 * runs in one worker thread; what it removed and what it has to report come back to the loop
 * through a bounded queue, and the loop — the manager report spool's one writer — records
 * them (mreport_removed, mreport_event). */
#ifndef PORTCULLIS_QUOTA_H
#define PORTCULLIS_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "manager/command.h"
#include "manager/mreport.h"
#include "portcullis.pb-c.h"
#include "settings.h"

#define QUOTA_DIRS 2                   /* quarantine, archive */
#define QUOTA_FLAG_BYTES (1024ull << 20) /* a quota under 1 GB is flagged (R5.13) */
#define QUOTA_CLOCK_ENV "PORTCULLIS_TEST_CLOCK_OFFSET_S" /* tests only: shifts the purge clock */

typedef struct quota quota_t;

/* Opens both directories' counters (creating the directories) and starts the worker.
 * state_dir keeps the time of the last retention purge. NULL with err filled. */
quota_t *quota_new(const char *quarantine_dir, const char *archive_dir, const char *state_dir,
                   mreport_t *mrep, char *err, size_t errlen);
/* Stops the worker (a purge in progress stops between two files) and records what it had
 * removed. NULL-safe. */
void quota_destroy(quota_t **qp);

/* The areas and their retention days, from a ConfigSnapshot in force (R5.2). */
void quota_set_areas(quota_t *q, Portcullis__Area *const *areas, size_t n);
/* The same from the cached snapshot file, at start (absent or unreadable: defaults). */
void quota_load_areas(quota_t *q, const char *snapshot_path);

/* The loop's share: counters, notifications, schedules, recording results. */
void quota_tick(quota_t *q, const settings_t *s);

/* The parent's command "purge" (R7.4): the worker runs the quota check (and purge) of both
 * directories and the retention purge now; the answer goes when what it removed has been
 * recorded, with the counts in its detail. *settings is the manager's pointer to the settings
 * in force. cmd must outlive q (its destroy still answers). */
void quota_commands(quota_t *q, command_t *cmd, settings_t *const *settings);

/* Records what the worker removed and has to report (quota_tick's first step, without the
 * schedules): for the benchmark's stand-in loop. */
void quota_record(quota_t *q);

/* Health (R5.12): fills su[0..QUOTA_DIRS) and ptrs to them; returns the count. */
size_t quota_health(quota_t *q, Portcullis__StoreUsage *su, Portcullis__StoreUsage **ptrs);

/* Synchronous runs in the caller's thread, for the benchmark and tests (the worker does the
 * same): a check and purge of dir (0 quarantine, 1 archive) against quota_bytes and the
 * low-water percent; a verification walk; a retention purge of both directories at now.
 * Results are recorded on the next quota_tick or at quota_destroy. */
void quota_run_check(quota_t *q, unsigned dir, uint64_t quota_bytes, unsigned low_water);
void quota_run_verify(quota_t *q, unsigned dir);
void quota_run_retention(quota_t *q, time_t now);

#endif
