/* mta_retry: the upstream MTA's retry behaviour (R4): the check of a retry configuration
 * (R4.2) and the timetable it produces (R4.3), as Postfix applies it — the queue manager looks
 * at the deferred queue every queue_run_delay; a message is retried at the first queue run after
 * its backoff has elapsed; the backoff doubles from minimal_backoff_time up to
 * maximal_backoff_time; a message older than maximal_queue_lifetime is bounced when its
 * attempt fails. Pure functions: the CLI prints the table, the unit test checks seed 003's. */
#ifndef PORTCULLIS_MTA_RETRY_H
#define PORTCULLIS_MTA_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTA_RETRY_ATTEMPTS_MAX 1000 /* rows a timetable may have */

struct mta_retry {
    int64_t queue_run_delay;        /* seconds */
    int64_t minimal_backoff_time;
    int64_t maximal_backoff_time;
    int64_t maximal_queue_lifetime;
    int64_t bounce_queue_lifetime;  /* for null-sender mail (bounces) */
};

struct mta_attempt {
    int64_t at;         /* seconds after the first failed delivery */
    unsigned retry;     /* 1 = first retry */
    int64_t backoff;    /* backoff that had to elapse before this retry */
    bool bounce;        /* the message is past its lifetime: bounced if this attempt fails */
};

/* The model defaults of R4.1: 900 s, 900 s, 3600 s, 1 d, 0. */
void mta_retry_defaults(struct mta_retry *r);
/* R4.2 and sanity: minimal_backoff_time >= queue_run_delay, maximal >= minimal, all > 0 but
 * bounce_queue_lifetime >= 0. 0 ok, -1 with a message naming the settings. */
int mta_retry_check(const struct mta_retry *r, char *err, size_t errlen);
/* Retries of a message that failed at t = 0 when the queue manager's runs fall at
 * first_run, first_run + queue_run_delay, …; stops at the bouncing attempt or at max rows.
 * Returns the number of rows written. */
size_t mta_retry_timetable(const struct mta_retry *r, int64_t first_run, struct mta_attempt *out,
                           size_t max);
/* "900s" / "15m" / "1h" / "1d" / "2w" (Postfix time units; bare numbers are seconds) → seconds.
 * 0 ok, -1 malformed or out of range. */
int mta_retry_parse_time(const char *s, int64_t *out);

#endif
