/* av: the ClamAV engine shared by every scan thread. One engine is in force at a time and
 * reference-counted; a reload (inotify on the signature directory, or the manager's
 * ReloadSignatures) builds the next engine in a background thread beside the old one and swaps
 * the pointer; the old one is freed when its last scan ends (R0.4, R1.4). */
#ifndef PORTCULLIS_AV_H
#define PORTCULLIS_AV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AV_DEBOUNCE_MS 300  /* quiet time after the last change in the directory before a reload */
#define AV_NAME_MAX 256     /* bytes of a virus name we keep */

struct event_base;

struct av_limits {
    int64_t max_file_size, max_scan_size, max_recursion, max_files, scan_timeout_ms;
};

enum av_status { AV_CLEAN, AV_VIRUS, AV_EXCEPTION, AV_SKIPPED };

struct av_result {
    enum av_status status;
    unsigned exceptions;        /* POLICY_EXC_AV_* with AV_EXCEPTION */
    char name[AV_NAME_MAX];     /* virus name, or what the exception was */
};

struct av_info {
    bool loaded;
    unsigned sigs;
    uint64_t swaps;             /* successful loads after the first */
    char version[128];          /* "sigs=N loaded=YYYY-MM-DDTHH:MM:SSZ", "none" */
};

typedef struct av av_t;
typedef struct av_engine av_engine_t;

/* cl_init, once, before threads start. 0 ok, -1 logged. */
int av_init(void);
/* Loads dir now (start-up). A missing or empty directory leaves no engine (warned): scans are
 * then exceptions (av_error), never clean. */
av_t *av_new(const char *dir, const struct av_limits *lim);
/* Another holder for an optional pattern set (smart scan's light pattern, R2.1): the same
 * loading, watching and swapping; logs call it `what` (static string). A missing or empty
 * directory is a normal state, logged once until a load succeeds; the caller skips the scan
 * while av_engine_acquire() gives NULL. */
av_t *av_new_optional(const char *what, const char *dir, const struct av_limits *lim);
void av_free(av_t **ap);
/* Limits for the next engine; a change reloads. */
void av_set_limits(av_t *av, const struct av_limits *lim);
/* Starts a background load (or queues one after the load running). */
void av_reload(av_t *av, const char *reason);
/* Watches the directory with inotify from the event loop (debounced). 0 ok, -1 logged. */
int av_watch(av_t *av, struct event_base *base);
/* Blocks until no load runs or is queued (tests, shutdown). */
void av_wait_idle(av_t *av);

void av_scan(av_t *av, const void *data, size_t len, struct av_result *out);
/* The engine in force with a reference held (NULL: none); scans with it stay valid whatever
 * reloads happen meanwhile. */
av_engine_t *av_engine_acquire(av_t *av);
void av_engine_release(av_t *av, av_engine_t **ep);
void av_engine_scan(av_engine_t *e, const av_t *av, const void *data, size_t len,
                    struct av_result *out);
void av_get_info(av_t *av, struct av_info *out);
/* Engines alive in the process (in force or still held by a scan). */
unsigned av_engines_live(void);

#endif
