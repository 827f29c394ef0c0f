/* smartscan: the smart-protection client of the scan service (R2). Content digests are looked
 * up with one HTTP request per message (libcurl multi, driven by the service's libevent loop,
 * connections kept alive); the server's health is checked at start and while smart scan is in
 * force or switched away; look-up failures are counted in a sliding window and, past the
 * threshold, the service switches to conventional scan by itself (R2.3) and may return (R2.4).
 * Loop thread only. */
#ifndef PORTCULLIS_SMARTSCAN_H
#define PORTCULLIS_SMARTSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "curl_loop.h"
#include "settings.h"

#define SMARTSCAN_DIGESTS_MAX 1000        /* digests per request: the protocol's limit */
#define SMARTSCAN_NAME_MAX 128            /* bytes of a verdict name kept */
#define SMARTSCAN_RESPONSE_MAX (1u << 20) /* bytes of an answer read: 1000 verdicts fit */

struct event_base;
typedef struct smartscan smartscan_t;

enum smartscan_status {
    SMARTSCAN_CLEAN,      /* every digest "unknown" */
    SMARTSCAN_MALICIOUS,  /* name set */
    SMARTSCAN_FAILED,     /* no usable answer: error set (R2.5) */
    SMARTSCAN_CANCELLED,  /* the client is being freed: the caller only releases its data */
};

struct smartscan_result {
    enum smartscan_status status;
    char name[SMARTSCAN_NAME_MAX];
    char error[256];
};

typedef void smartscan_done_fn(const struct smartscan_result *r, void *arg);
/* The method changed by itself: method "conventional" (switch) or "smart" (return). */
typedef void smartscan_changed_fn(const char *method, const char *reason, void *arg);

smartscan_t *smartscan_new(struct event_base *base, smartscan_changed_fn *changed, void *arg);
/* Pending look-ups end with SMARTSCAN_CANCELLED (callbacks run inside). NULL-safe. */
void smartscan_free(smartscan_t **sp);
/* Applies the smart_scan.* settings of a configuration (at start and on every reload), with
 * the look-up service's pin and this child's credential (R8.7). */
void smartscan_configure(smartscan_t *ss, const settings_t *s, const struct curl_peer *peer);
/* The administrator asks this child to use smart scan again after its own switch (R2.4): the
 * switch ends and the server is checked at once, as when smart scan starts. */
void smartscan_resume(smartscan_t *ss);
/* True when messages are to be looked up (smart scan is the method in force). */
bool smartscan_in_force(const smartscan_t *ss);
/* "ok", "failing", "unreachable" or "off" (ScanStats.smart_scan_state). */
const char *smartscan_state(const smartscan_t *ss);
/* One request for n (≤ SMARTSCAN_DIGESTS_MAX) SHA-256 digests; done runs later, in the loop,
 * exactly once. */
void smartscan_lookup(smartscan_t *ss, const unsigned char (*digests)[32], size_t n,
                      smartscan_done_fn *done, void *arg);

/* The look-up service's answer to digests hex[0..n) (lowercase hex): 0 with res->status (and
 * name) set, -1 with res->error. A pure parser of peer bytes (tests/fuzz). */
int smartscan_parse_answer(const char *data, size_t len, const char (*hex)[65], size_t n,
                           struct smartscan_result *res);

#endif
