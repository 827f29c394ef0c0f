/* scan_control: the scan service's end of the manager's socket pair. Reads length-prefixed
 * Envelopes and hands them to a callback; sends Envelopes without ever blocking the loop
 * (queued in a bufferevent, bounded: past the bound, messages are dropped and counted). */
#ifndef PORTCULLIS_SCAN_CONTROL_H
#define PORTCULLIS_SCAN_CONTROL_H

#include "wire.h"

struct event_base;

#define SCAN_CONTROL_OUT_MAX (1024 * 1024) /* bytes queued to the manager before we drop */

typedef struct scan_control scan_control_t;

struct scan_control_handlers {
    void (*message)(const envelope_t *env, void *arg); /* env is borrowed */
    void (*closed)(void *arg); /* EOF, error or garbage: the manager is gone */
};

/* Takes ownership of fd (made non-blocking, closed on free). NULL on failure, logged. */
scan_control_t *scan_control_new(struct event_base *base, int fd,
                                 const struct scan_control_handlers *h, void *arg);
void scan_control_free(scan_control_t **cp);
/* Queues env; 0 ok, -1 dropped (backlog over SCAN_CONTROL_OUT_MAX, or closed). */
int scan_control_send(scan_control_t *c, const envelope_t *env);

#endif
