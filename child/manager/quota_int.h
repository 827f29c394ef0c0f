/* quota_int: what quota.c (threads, schedules, the loop's share) and quota_store.c (the
 * worker's walks and deletions) share: the handle, and the result queue's producers. */
#ifndef PORTCULLIS_QUOTA_INT_H
#define PORTCULLIS_QUOTA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "manager/command.h"
#include "manager/quota.h"
#include "storepath.h"
#include "usage.h"

#define QUOTA_POLL_MS 1000            /* counters read this often: "at once" on a crossing */
#define QUOTA_RESULTS_MAX 20000       /* queued removals before the worker waits for the loop */
#define QUOTA_DRAIN_PER_TICK 20000    /* recorded per loop tick (one spool sync each) */
#define QUOTA_VERIFY_RETRY_MS 30000   /* a walk that saw the counters move is repeated */
#define QUOTA_VERIFY_TRIES 5          /* … then corrected anyway, with the uncertainty logged */
#define QUOTA_PURGE_HOLD_MS 60000     /* after a purge that ran out of files short of the mark */
#define QUOTA_BUCKET_QUIET_S 7200     /* an emptied bucket dir is removed only 2 h after its
                                       * hour: the scan service may still mkdir/write into it */
#define QUOTA_DEFAULT_RETENTION_DAYS 15 /* an area dir no area maps to any more (R5.2 default) */
#define QUOTA_AREAS_MAX 1024
#define QUOTA_SNAPSHOT_MAX (64u << 20) /* bytes of the cached snapshot read at start */
#define QUOTA_MB(b) ((double)(b) / 1048576.0)

enum result_type { RES_REMOVED, RES_EVENT, RES_DONE }; /* DONE: a run-now ended (text: detail) */

struct result {
    struct result *next;
    enum result_type type;
    const char *kind, *reason, *severity;  /* static strings */
    char file_id[STOREPATH_FILE_ID_LEN + 1];
    bool notify;
    char *subject, *text;
};

struct qdir {
    const char *kind, *title;         /* "quarantine", "Quarantine" */
    char base[2048];
    usage_t *usage;
    /* loop only */
    bool notified, flag_logged;
    uint64_t check_interval_ms;
    /* under mu */
    uint64_t next_check_ms, next_verify_ms;
    uint64_t quota_bytes;
    bool want_check, want_verify, busy;   /* busy: the worker is checking/purging it */
    uint64_t hold_check_ms;               /* no over-quota purge before (one found nothing) */
    unsigned verify_tries;
    uint64_t last_check_ms, last_purge_ms;
    int64_t last_drift;
};

struct area_ret {
    char dir[STOREPATH_AREA_DIR_MAX + 1];
    unsigned days;
};

struct quota {
    struct qdir d[QUOTA_DIRS];
    char last_path[4096];             /* state_dir/retention.last: time of the last run */
    mreport_t *mrep;
    int64_t clock_offset_s;           /* QUOTA_CLOCK_ENV, tests only */
    uint64_t next_poll_ms;
    time_t last_retention;            /* loop: when the last run was requested */
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t work, space;
    bool stop, want_retention;
    unsigned low_water;
    struct area_ret *areas;
    size_t nareas;
    struct result *head, *tail;
    size_t nresults;
    /* the parent's "purge" command (R7.4) */
    command_t *cmd;                   /* loop */
    settings_t *const *settings;      /* loop */
    uint64_t now_req;                 /* loop: command id answered at the run's RES_DONE */
    bool want_now;                    /* under mu: a check + purge and retention purge now */
    uint64_t tally[QUOTA_DIRS][2];    /* under mu: removed by quota / retention since reset */
};

/* Worker → loop (quota.c): a removed file, an event to record. Wait while the queue is full. */
void quota_push_removed(quota_t *q, const char *kind, const char *file_id, const char *reason);
void quota_push_event(quota_t *q, const char *severity, bool notify, const char *subject,
                      const char *text);
/* The worker is asked to stop: long walks check between files and hours. */
bool quota_stopping(quota_t *q);

#endif
