/* smartscan_window: the sliding window of smart-protection look-up failures (R2.3): "N
 * failures within W seconds". Pure counter over caller-supplied times, so it is testable
 * without a clock or a network. */
#ifndef PORTCULLIS_SMARTSCAN_WINDOW_H
#define PORTCULLIS_SMARTSCAN_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#define SMARTSCAN_WINDOW_MAX 10000 /* failures remembered: smart_scan.failure_threshold's max */

struct smartscan_window {
    uint64_t *at;          /* ring of the last `threshold` failure times, ms */
    unsigned threshold;    /* N */
    uint64_t window_ms;    /* W */
    unsigned head, count;  /* next slot; slots in use (≤ threshold) */
};

/* threshold 1..SMARTSCAN_WINDOW_MAX (clamped), window in ms. Starts empty. */
void smartscan_window_init(struct smartscan_window *w, unsigned threshold, uint64_t window_ms);
void smartscan_window_clear(struct smartscan_window *w);
void smartscan_window_fini(struct smartscan_window *w);
/* Records a failure at now_ms; true when `threshold` failures fall within the window ending at
 * now_ms (this one included), i.e. the N-th failure inside W. */
bool smartscan_window_fail(struct smartscan_window *w, uint64_t now_ms);
/* Failures within the window ending at now_ms (at most threshold). */
unsigned smartscan_window_count(const struct smartscan_window *w, uint64_t now_ms);

#endif
