/* scan_latency: the bounds of the scan latency histogram the scan service keeps in ScanStats
 * (scan_ms_buckets) and the parent exposes as a Prometheus histogram (parent/api). */
#ifndef PORTCULLIS_SCAN_LATENCY_H
#define PORTCULLIS_SCAN_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/* upper bounds in milliseconds; one more bucket holds everything above the last */
static const uint32_t SCAN_LATENCY_BOUNDS_MS[] = { 1, 2, 5, 10, 25, 50, 100, 250, 500,
                                                  1000, 2500, 5000, 10000 };
#define SCAN_LATENCY_NBOUNDS (sizeof SCAN_LATENCY_BOUNDS_MS / sizeof SCAN_LATENCY_BOUNDS_MS[0])
#define SCAN_LATENCY_NBUCKETS (SCAN_LATENCY_NBOUNDS + 1)

/* The bucket index of a latency of ms milliseconds. */
static inline size_t scan_latency_bucket(uint64_t ms)
{
    size_t i = 0;

    while (i < SCAN_LATENCY_NBOUNDS && ms > SCAN_LATENCY_BOUNDS_MS[i])
        i++;
    return i;
}

/* The counters one scan service keeps from its start (Prometheus counters: they begin again at
 * zero when the service restarts). */
struct scan_latency {
    uint64_t buckets[SCAN_LATENCY_NBUCKETS]; /* per bucket, not cumulative */
    uint64_t sum_ms;
    uint64_t count;
};

/* Counts one scanned message's latency. */
static inline void scan_latency_add(struct scan_latency *h, uint64_t ms)
{
    h->buckets[scan_latency_bucket(ms)]++;
    h->sum_ms += ms;
    h->count++;
}

#endif
