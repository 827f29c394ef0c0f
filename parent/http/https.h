/* https: the parent's HTTPS listener (evhttp over OpenSSL bufferevents) in its own thread with
 * its own event base and PGconn, like parent/sps. It owns the TLS identity — a self-signed
 * EC P-256 certificate made at first start in state_dir (https.key 0600, https.crt) — whose
 * public-key pin children check instead of a CA. Routes are prefixes mounted by other modules
 * (component downloads, the REST API, /metrics and the console). */
#ifndef PORTCULLIS_HTTPS_H
#define PORTCULLIS_HTTPS_H

#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#define HTTPS_CONN_MAX 256          /* client connections at once, counted when accepted */
#define HTTPS_CONN_PER_ADDRESS_MAX 128 /* … and from one client address (R8.8): half the
                                         * total, room for a reverse proxy's connections */
#define HTTPS_TIMEOUT_S 60          /* seconds a connection may stall reading or writing */
#define HTTPS_HEADERS_MAX 8192      /* bytes of request headers */
/* bytes of a request body: the REST API's (API_BODY_MAX, 256 KiB) with room to spare, so the
 * API answers an oversized body with its own 413 message; past this evhttp refuses it */
#define HTTPS_BODY_MAX (320 * 1024)
#define HTTPS_ROUTES_MAX 16         /* mounted prefixes */
#define HTTPS_PIN_MAX 64            /* "sha256//" + base64 of 32 bytes */

typedef struct https https_t;

struct https_options {
    const char *dsn;        /* libpq connection string (parent.conf db) */
    const char *listen;     /* "HOST:PORT" or "[IPv6]:PORT" */
    const char *state_dir;  /* where https.key / https.crt live */
    const char *cert;       /* parent.conf https_cert: PEM certificate (chain); "" or NULL:
                             * the self-signed pair in state_dir */
    const char *key;        /* parent.conf https_key: its PEM key, mode 0600 */
};

/* A route handler runs in the HTTPS thread; rest is the path after the prefix. It must
 * answer req (now or later on the same event base). */
typedef void (*https_handler_fn)(https_t *h, struct evhttp_request *req, const char *rest,
                                 void *arg);
/* Called when a connection a handler registered (https_conn_on_close) goes away before the
 * handler unregistered: the handler's state for it is to be freed; req is gone. */
typedef void (*https_close_fn)(void *arg);

/* Loads the given certificate and key (both or neither; the key must not be readable by group
 * or others) or loads or makes the self-signed pair, builds the TLS context, binds (a port in use is retried
 * every few seconds, logged, not fatal) and tries the database. NULL with err filled. */
https_t *https_new(const struct https_options *opt, char *err, size_t errlen);
/* "sha256//<base64 of SHA-256 of the SubjectPublicKeyInfo DER>" (CURLOPT_PINNEDPUBLICKEY). */
const char *https_pin(const https_t *h);
/* Loads or makes only the certificate; pin gets its pin. 0 ok, -1 with err filled. */
int https_tls_identity(const char *state_dir, char pin[HTTPS_PIN_MAX], char *err, size_t errlen);
/* Mounts fn at path prefix (e.g. "/v1/updates/"); before https_start only. */
int https_route(https_t *h, const char *prefix, https_handler_fn fn, void *arg);
/* fn(arg) runs in https_free once no connection is left, before the event base goes: a
 * route's own state is freed there. 0 ok, -1 no room. */
int https_on_free(https_t *h, https_close_fn fn, void *arg);
int https_start(https_t *h, char *err, size_t errlen);
void https_free(https_t **hp);

/* For handlers: the thread's database connection (reconnected with backoff), NULL while the
 * database is away; https_db_lost() after a failed statement on a broken connection. */
PGconn *https_db(https_t *h);
void https_db_lost(https_t *h, const char *why);
/* Connects again now, whatever the backoff: for the request that found the connection broken
 * (a database restarted since), so that it is answered rather than refused. */
PGconn *https_db_reconnect(https_t *h);
struct event_base *https_base(https_t *h);
/* Registers / clears a cleanup for req's connection. */
void https_conn_on_close(https_t *h, struct evhttp_request *req, https_close_fn fn, void *arg);
void https_conn_forget(https_t *h, struct evhttp_connection *evcon);
/* j as compact JSON with code; takes j (NULL: an empty body). */
void https_reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j);
/* {"error": message} with code. */
void https_reply_error(struct evhttp_request *req, int code, const char *reason,
                       const char *message);
/* At most one line per few seconds; the rest are counted. */
void https_log_limited(https_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
