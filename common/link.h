/* link: the parent <-> child ZeroMQ link's shared rules: heartbeat timing (Paranoid Pirate:
 * liveness 3, reconnect backoff 1 → 32 s), and CURVE socket set-up for both ends. */
#ifndef PORTCULLIS_LINK_H
#define PORTCULLIS_LINK_H

#include <stdint.h>

#include "keys.h"
#include "wire.h"

#define LINK_HEARTBEAT_MS 2000       /* idle heartbeat, both ways */
#define LINK_LIVENESS 3              /* missed intervals before the peer is considered gone */
#define LINK_RECONNECT_MIN_MS 1000
#define LINK_RECONNECT_MAX_MS 32000
#define LINK_LISTEN_BACKLOG 4096     /* pending TCP connections a server socket holds (libzmq's
                                      * default, 100, drops SYNs in a reconnect storm; the kernel
                                      * caps it at net.core.somaxconn) */
#define LINK_ZAP_CLUSTER "cluster"   /* ZAP domain: enrolled keys only */
#define LINK_ZAP_ENROL "enrol"       /* ZAP domain: any key, enrolment requests only */

/* ZMQ_MAXMSGSIZE of each socket, fitted to what it carries (R8.3): libzmq drops the
 * connection of a peer that sends more, before any of it is decoded. */
#define LINK_CLUSTER_MSG_MAX (WIRE_MSG_MAX + 1024) /* snapshots and report batches */
#define LINK_ENROL_MSG_MAX WIRE_ENROL_MAX          /* EnrollRequest and EnrollReply */

/* A bound CURVE server socket (ROUTER) with the message size limit max_msg and the given ZAP
 * domain. NULL with err filled. */
void *link_server_socket(void *ctx, const struct curve_keypair *kp, const char *zap_domain,
                         const char *endpoint, int64_t max_msg, char *err, size_t errlen);
/* A connected CURVE client socket (DEALER) pinned to the server's public key. */
void *link_client_socket(void *ctx, const struct curve_keypair *kp, const char *server_public,
                         const char *endpoint, int64_t max_msg, char *err, size_t errlen);
void link_close(void **sockp);

#endif
