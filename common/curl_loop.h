/* curl_loop: libcurl's multi interface driven by the scan service's libevent loop
 * (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION, one event per socket): no thread ever waits on
 * the network, and the multi handle keeps connections alive between requests. Used by the
 * smart-scan look-ups and the web-reputation client of the scan service, each with a multi
 * handle of its own, and by the parent's look-up service to ask the upstream rating service. */
#ifndef PORTCULLIS_CURL_LOOP_H
#define PORTCULLIS_CURL_LOOP_H

#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct curl_loop curl_loop_t;
/* A transfer ended (result CURLE_OK or the failure); priv is its CURLOPT_PRIVATE. Called
 * from the loop; the callee may remove and clean up the handle. */
typedef void curl_loop_done_fn(void *arg, void *priv, CURLcode result);

/* A response body kept up to max bytes (NUL-terminated); more ends the transfer with
 * CURLE_WRITE_ERROR and sets too_big. */
struct curl_body {
    char *data;
    size_t len, max;
    bool too_big;
};

/* Who a loop talks to (R8.7): with a pin, only https to a server whose public key has that
 * pin (the parent's self-signed key: no CA is consulted); with a bearer, every request carries
 * `Authorization: Bearer <bearer>`. Empty fields: ordinary http/https with CA verification. */
#define CURL_PEER_PIN_MAX 80     /* "sha256//" + base64 of a SHA-256 */
#define CURL_PEER_BEARER_MAX 160 /* a look-up credential, "NAME:HEX" */
struct curl_peer {
    char pin[CURL_PEER_PIN_MAX];
    char bearer[CURL_PEER_BEARER_MAX];
};

/* NULL (logged) if libcurl cannot be set up. */
curl_loop_t *curl_loop_new(struct event_base *base, curl_loop_done_fn *done, void *arg);
/* Frees the multi handle; every easy handle must have been removed first. NULL-safe. */
void curl_loop_free(curl_loop_t **lp);
void curl_loop_add(curl_loop_t *l, CURL *easy);
void curl_loop_remove(curl_loop_t *l, CURL *easy);
/* The peer later handles of this loop are made for (NULL: none); connections already open
 * and checked stay open. */
void curl_loop_set_peer(curl_loop_t *l, const struct curl_peer *peer);

/* A new easy handle for url, bounded by timeout_ms (connect included), TCP keep-alive, with
 * the loop's peer applied, priv as CURLOPT_PRIVATE and its answer collected in body (max
 * bytes). Aborts if libcurl cannot make one (out of memory). */
CURL *curl_loop_easy(curl_loop_t *l, const char *url, long timeout_ms, void *priv,
                     struct curl_body *body, size_t max);

#endif
