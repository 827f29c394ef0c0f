/* mta_retry: see mta_retry.h. */
#include "mta_retry.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define MTA_RETRY_TIME_MAX (366LL * 86400) /* seconds: a year is beyond any sane queue setting */

void mta_retry_defaults(struct mta_retry *r)
{
    r->queue_run_delay = 900;
    r->minimal_backoff_time = 900;
    r->maximal_backoff_time = 3600;
    r->maximal_queue_lifetime = 86400;
    r->bounce_queue_lifetime = 0;
}

int mta_retry_check(const struct mta_retry *r, char *err, size_t errlen)
{
    if (r->queue_run_delay <= 0 || r->minimal_backoff_time <= 0 || r->maximal_backoff_time <= 0 ||
        r->maximal_queue_lifetime <= 0 || r->bounce_queue_lifetime < 0) {
        snprintf(err, errlen, "mta: every retry time must be positive (bounce_queue_lifetime may "
                              "be 0)");
        return -1;
    }
    if (r->minimal_backoff_time < r->queue_run_delay) {
        snprintf(err, errlen, "mta.minimal_backoff_time (%llds) must be at least "
                              "mta.queue_run_delay (%llds)",
                 (long long)r->minimal_backoff_time, (long long)r->queue_run_delay);
        return -1;
    }
    if (r->maximal_backoff_time < r->minimal_backoff_time) {
        snprintf(err, errlen, "mta.maximal_backoff_time (%llds) must be at least "
                              "mta.minimal_backoff_time (%llds)",
                 (long long)r->maximal_backoff_time, (long long)r->minimal_backoff_time);
        return -1;
    }
    return 0;
}

size_t mta_retry_timetable(const struct mta_retry *r, int64_t first_run, struct mta_attempt *out,
                           size_t max)
{
    int64_t last = 0, backoff = r->minimal_backoff_time, run = first_run;
    size_t n = 0;

    if (r->queue_run_delay <= 0 || max == 0)
        return 0;
    while (n < max && n < MTA_RETRY_ATTEMPTS_MAX) {
        if (run - last >= backoff) {
            out[n].at = run;
            out[n].retry = (unsigned)n + 1;
            out[n].backoff = backoff;
            out[n].bounce = run >= r->maximal_queue_lifetime;
            if (out[n++].bounce)
                break;
            last = run;
            backoff = backoff * 2 > r->maximal_backoff_time ? r->maximal_backoff_time : backoff * 2;
        }
        run += r->queue_run_delay;
    }
    return n;
}

int mta_retry_parse_time(const char *s, int64_t *out)
{
    char *end;
    long long v;
    int64_t unit = 1;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0)
        return -1;
    switch (*end) {
    case '\0': case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (v > MTA_RETRY_TIME_MAX / unit)
        return -1;
    *out = v * unit;
    return 0;
}
