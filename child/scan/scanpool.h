/* scanpool: the scan threads (scan.threads). The event loop hands over a received message as
 * a scan_job; a thread parses it (mime), scans it (av), evaluates the policy in force, builds
 * the delivered copy (tags, headers) and writes the quarantine/archive files; the job comes back
 * to the loop through a pipe. The loop never waits on a scan. */
#ifndef PORTCULLIS_SCANPOOL_H
#define PORTCULLIS_SCANPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "scan/av.h"
#include "scan/ers.h"
#include "scan/mime.h"
#include "scan/store.h"
#include "scan/wrs.h"

#define SCANPOOL_QUEUE_PER_THREAD 4 /* waiting jobs per thread before sessions stop reading */
#define SCANPOOL_FILES_MAX (1 + POLICY_ARCHIVES_MAX)

struct event_base;
struct evbuffer;

struct scan_job {
    /* in: set by the loop, read-only for the thread */
    char id[17];
    struct evbuffer *body;       /* owned; made contiguous before the hand-over */
    const char *data;            /* its bytes */
    size_t len;
    char *sender;
    char **rcpts;
    size_t nrcpts;
    struct mime_limits mlim;
    bool av_enabled;
    bool smart;                  /* smart scan in force: MIME + light pattern + digests, back
                                  * to the loop for the look-up, then again to a thread for
                                  * the policy */
    bool spam_on;                /* spam.enabled: the policy scores the message (R5.1) */
    uint64_t received_ms;
    bool ers_on;                 /* email reputation looked the client up: ers is its result */
    struct ers_result ers;
    bool wrs_on;                 /* web reputation (wrs.enabled): rate the message's URLs */
    bool wrs_remote;             /* …and ask the rating service (wrs.url): back to the loop
                                  * after the parse, like smart (the thread clears it for a
                                  * message without URLs) */
    /* out: set by the thread */
    struct mime_result *mime;
    struct av_result av;
    bool light_scanned;          /* smart: the light pattern scanned it (one was loaded) */
    struct av_result light;      /* …its result: only AV_VIRUS counts (a virus verdict) */
    unsigned exceptions;         /* mime | av */
    bool parsed;                 /* first pass over: the loop does the look-ups, then a
                                  * thread decides */
    struct wrs_rating wrs;       /* the highest rating of the message's URLs */
    bool wrs_asked;              /* wrs_remote: the loop has the service's answer */
    struct wrs_rating wrs_service; /* …its highest rating (level 0: none) */
    char wrs_skipped[256];       /* …or why its ratings are skipped ("" when they are not) */
    char wrs_detail[WRS_CATEGORY_MAX + WRS_URL_MAX + 16]; /* "level:category:url" */
    bool decided;
    struct policy_decision dec;
    char spam_detail[sizeof ((struct policy_decision *)0)->spam_rules + 48]; /* "6.5 rules=a,b" */
    struct evbuffer *out;        /* delivered copy when the policy changed it; else NULL */
    struct store_file files[SCANPOOL_FILES_MAX]; /* quarantine first, then archives */
    size_t nfiles;
    bool store_failed;
    char error[256];
    uint64_t ms_scan;
    unsigned char (*digests)[32]; /* smart: whole message, then each decoded part */
    size_t ndigests;
    bool looked_up;              /* smart: the loop has the answer (smart_virus) */
    char smart_virus[128];       /* smart: "" clean, else the server's name for it */
    /* loop side */
    void *owner;                 /* the session waiting for it; NULL once it went away */
    struct scan_job *next;
};

typedef struct scanpool scanpool_t;
typedef void scanpool_done_fn(struct scan_job *job, void *arg);

/* nthreads 0 = number of cores. av may be NULL (scans are then exceptions if enabled). */
scanpool_t *scanpool_new(struct event_base *base, unsigned nthreads, av_t *av,
                         const char *quarantine_dir, const char *archive_dir,
                         scanpool_done_fn *done, void *arg);
/* Smart scan's light pattern (R2.1; may be NULL): scanned beside the look-ups. Borrowed; set
 * before the first job. */
void scanpool_set_light(scanpool_t *p, av_t *light);
/* Joins the threads (scans in progress finish); jobs not returned are freed. */
void scanpool_free(scanpool_t **pp);
/* The policy and web-reputation set (may be NULL) for scans that start from now on; takes
 * ownership of both (*pp, *wp set NULL). Scans in
 * progress keep theirs; the old one is freed after the last of them. */
void scanpool_set_policy(scanpool_t *p, policy_t **pp, wrs_t **wp);
void scanpool_submit(scanpool_t *p, struct scan_job *job);
bool scanpool_full(const scanpool_t *p);
unsigned scanpool_threads(const scanpool_t *p);

struct scan_job *scan_job_new(void);
void scan_job_free(struct scan_job **jp);
/* One job, in the calling thread (what each scan thread runs; also for tests). */
void scanpool_run_job(scanpool_t *p, struct scan_job *job);

#endif
