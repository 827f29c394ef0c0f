/* sps: the smart-protection look-up service (R2.1): plain HTTP/1.1 (evhttp) answering
 * POST /v1/lookup (SHA-256 digests → verdicts) and GET /v1/health from PostgreSQL table
 * sps_hashes. Runs as a thread of portcullis-parent (sps_start) or as the whole process
 * (portcullis-parent --sps-only → sps_run); either way with its own event base and PGconn. */
#ifndef PORTCULLIS_SPS_H
#define PORTCULLIS_SPS_H

#include <signal.h>
#include <stddef.h>

#define SPS_CONN_MAX 512      /* client connections served at once (children keep one each) */
#define SPS_TIMEOUT_S 30      /* seconds a connection may sit idle or take to send a request */
#define SPS_HEADERS_MAX 8192  /* bytes of request headers */

typedef struct sps sps_t;

struct sps_options {
    const char *dsn;    /* libpq connection string (parent.conf db) */
    const char *listen; /* "HOST:PORT" or "[IPv6]:PORT" */
};

/* Binds the listener and tries the database (an unreachable database is not an error: the
 * service answers 503 and reconnects with backoff). NULL with err filled on failure. */
sps_t *sps_new(const struct sps_options *opt, char *err, size_t errlen);
/* Serves in the calling thread until *stop becomes non-zero. */
void sps_run(sps_t *s, volatile sig_atomic_t *stop);
/* Serves in a new thread. 0 ok, -1 with err filled. */
int sps_start(sps_t *s, char *err, size_t errlen);
/* Stops the thread if one runs, closes everything. NULL-safe; sets *sp = NULL. */
void sps_free(sps_t **sp);

#endif
