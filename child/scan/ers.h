/* ers: email reputation (R3.1): DNS block-list look-ups of the client address (XFORWARD ADDR)
 * in the ers.zones zones, with libevent's evdns on the scan service's event loop. A look-up
 * starts at MAIL and has ers.timeout_ms in total; the session hands the message to the scan
 * pool once its answers are in or the time is up (then: not listed). A check at start and every
 * ers.check_interval_s gives the state "ok" or "failing"; while failing look-ups are skipped
 * (mail flows as not listed) and a successful check brings "ok" back. Loop thread only. */
#ifndef PORTCULLIS_ERS_H
#define PORTCULLIS_ERS_H

#include <stdbool.h>
#include <stddef.h>

#include "ers_zones.h"
#include "settings.h"

#define ERS_HITS_MAX 16        /* listings one look-up keeps (zone:listing pairs) */
#define ERS_DETAIL_MAX 256     /* bytes of a result's detail text */

struct event_base;
typedef struct ers ers_t;
struct ers_query;

enum ers_outcome { ERS_SKIPPED, ERS_NOT_LISTED, ERS_LISTED };

struct ers_result {
    enum ers_outcome outcome;
    size_t nhits;
    char listings[ERS_HITS_MAX][ERS_LISTING_LEN_MAX + 1];
    char detail[ERS_DETAIL_MAX];          /* "zone:listing,…" when listed, else why skipped */
};

/* dns_server "IP[:PORT]" or NULL/"" for the system's /etc/resolv.conf. NULL with err filled. */
ers_t *ers_new(struct event_base *base, const char *dns_server, char *err, size_t errlen);
/* Look-ups in flight are abandoned without callbacks. NULL-safe; sets *ep = NULL. */
void ers_free(ers_t **ep);
/* Applies the ers.* settings (the parent validated ers.zones); a change of zones, enabled or
 * timeout checks again at once. */
void ers_configure(ers_t *e, const settings_t *s);
/* "ok", "failing", or "off" (ers.enabled false or no zones). */
const char *ers_state_name(const ers_t *e);
const char *ers_outcome_name(enum ers_outcome o); /* "skipped", "not_listed", "listed" */

/* Starts the look-ups of one client address (XFORWARD ADDR text; "IPV6:" prefix allowed).
 * NULL when ERS is off; otherwise a query, possibly complete at once (skipped: no usable
 * address, or the state is failing). */
struct ers_query *ers_query_start(ers_t *e, const char *addr);
bool ers_query_done(const struct ers_query *q);
/* Calls fn(arg) once when the query completes (answers in or time up); q must not be done.
 * fn may free the query. */
void ers_query_wait(struct ers_query *q, void (*fn)(void *arg), void *arg);
/* Valid once done; borrowed from the query. */
const struct ers_result *ers_query_result(const struct ers_query *q);
/* Cancels what is in flight. NULL-safe; sets *qp = NULL. */
void ers_query_free(struct ers_query **qp);

#endif
