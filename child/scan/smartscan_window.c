/* smartscan_window: "N look-up failures within W seconds" (R2.3). Only the last N failure
 * times matter: the N-th failure is inside the window exactly when the oldest of the last N is
 * younger than W. A ring of N timestamps, no allocation after init. */
#include "scan/smartscan_window.h"

#include <stdlib.h>

#include "util.h"

void smartscan_window_init(struct smartscan_window *w, unsigned threshold, uint64_t window_ms)
{
    if (threshold < 1)
        threshold = 1;
    if (threshold > SMARTSCAN_WINDOW_MAX)
        threshold = SMARTSCAN_WINDOW_MAX;
    w->at = xcalloc(threshold, sizeof *w->at);
    w->threshold = threshold;
    w->window_ms = window_ms;
    w->head = w->count = 0;
}

void smartscan_window_clear(struct smartscan_window *w) { w->head = w->count = 0; }

void smartscan_window_fini(struct smartscan_window *w)
{
    free(w->at);
    w->at = NULL;
    w->threshold = w->head = w->count = 0;
}

static bool s_inside(const struct smartscan_window *w, uint64_t t, uint64_t now_ms)
{
    return t <= now_ms && now_ms - t < w->window_ms;
}

bool smartscan_window_fail(struct smartscan_window *w, uint64_t now_ms)
{
    unsigned oldest;

    w->at[w->head] = now_ms;
    w->head = (w->head + 1) % w->threshold;
    if (w->count < w->threshold)
        w->count++;
    if (w->count < w->threshold)
        return false;
    oldest = w->head; /* the ring is full: the slot to be overwritten next is the oldest */
    return s_inside(w, w->at[oldest], now_ms);
}

unsigned smartscan_window_count(const struct smartscan_window *w, uint64_t now_ms)
{
    unsigned n = 0;

    for (unsigned i = 0; i < w->count; i++) {
        unsigned slot = (w->head + w->threshold - 1 - i) % w->threshold;
        if (s_inside(w, w->at[slot], now_ms))
            n++;
    }
    return n;
}
