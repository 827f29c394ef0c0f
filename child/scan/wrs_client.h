/* wrs_client: the web-reputation rating service client of the scan service (R3.2). One HTTP
 * POST per message, {"urls": [...]} → {"ratings": [{"url", "level", "category"}]}, with
 * libcurl's multi interface on the service's libevent loop (its own multi handle, connections
 * kept alive). Any failure (connect, timeout past wrs.timeout_ms, HTTP status, bad answer)
 * ends the request with a reason: the caller skips the service's ratings. Loop thread only. */
#ifndef PORTCULLIS_WRS_CLIENT_H
#define PORTCULLIS_WRS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "curl_loop.h"
#include "scan/wrs.h"
#include "settings.h"

#define WRS_CLIENT_RESPONSE_MAX (1u << 20) /* bytes of an answer read: WRS_URLS_MAX ratings fit */

struct event_base;
typedef struct wrs_client wrs_client_t;

enum wrs_client_status {
    WRS_CLIENT_OK,         /* best set (level 0: nothing rated) */
    WRS_CLIENT_FAILED,     /* error set */
    WRS_CLIENT_CANCELLED,  /* the client is being freed: the caller only releases its data */
};

struct wrs_client_result {
    enum wrs_client_status status;
    struct wrs_rating best;
    char error[256];
};

typedef void wrs_client_done_fn(const struct wrs_client_result *r, void *arg);

wrs_client_t *wrs_client_new(struct event_base *base);
/* Pending requests end with WRS_CLIENT_CANCELLED (callbacks run inside). NULL-safe. */
void wrs_client_free(wrs_client_t **wp);
/* Applies the wrs.* settings of a configuration (at start and on every reload), with the
 * look-up service's pin and this child's credential (R8.7). */
void wrs_client_configure(wrs_client_t *wc, const settings_t *s, const struct curl_peer *peer);
/* True when the service is to be asked (wrs.enabled and wrs.url set). */
bool wrs_client_on(const wrs_client_t *wc);
/* Rates at most WRS_URLS_MAX of urls (copied); done runs later, in the loop, exactly once. */
void wrs_client_rate(wrs_client_t *wc, char *const *urls, size_t n, wrs_client_done_fn *done,
                     void *arg);

/* The rating service's answer: 0 with res->best set, -1 with res->error (tests/fuzz). */
int wrs_client_parse_answer(const char *data, size_t len, struct wrs_client_result *res);

#endif
