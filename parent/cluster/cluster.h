/* cluster: the parent's side of the ZeroMQ link: a CURVE ROUTER for enrolled children (keys
 * authorised by the ZAP handler from PostgreSQL), a CURVE ROUTER for enrolment requests,
 * configuration pushes (woken by LISTEN/NOTIFY), heartbeats, child liveness and health. */
#ifndef PORTCULLIS_CLUSTER_H
#define PORTCULLIS_CLUSTER_H

#include <signal.h>
#include <stddef.h>

#include "keys.h"

struct cluster_options {
    const char *dsn;
    const char *cluster_endpoint;
    const char *enrol_endpoint;
    const struct curve_keypair *keys;
    unsigned ingest_threads; /* report ingest threads, 1..CLUSTER_INGEST_THREADS_MAX */
};

#define CLUSTER_INGEST_THREADS_MAX 8

typedef struct cluster cluster_t;

/* Connects to the database, binds both sockets; NULL with err filled. */
cluster_t *cluster_new(const struct cluster_options *opt, char *err, size_t errlen);
/* Serves until *stop becomes non-zero. */
void cluster_run(cluster_t *c, volatile sig_atomic_t *stop);
void cluster_free(cluster_t **cp);

#endif
