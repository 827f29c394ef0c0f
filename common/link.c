/* link: see link.h. */
#include "link.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "wire.h"

static int s_common(void *s, int64_t max)
{
    int zero = 0;

    return zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max) |
           zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
}

void *link_server_socket(void *ctx, const struct curve_keypair *kp, const char *zap_domain,
                         const char *endpoint, int64_t max_msg, char *err, size_t errlen)
{
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, backlog = LINK_LISTEN_BACKLOG;

    if (s == NULL) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (s_common(s, max_msg) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp->secret_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0 ||
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(s, ZMQ_BACKLOG, &backlog, sizeof backlog) != 0) {
        snprintf(err, errlen, "CURVE server options: %s (libzmq built without CURVE?)",
                 zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (zmq_bind(s, endpoint) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

void *link_client_socket(void *ctx, const struct curve_keypair *kp, const char *server_public,
                         const char *endpoint, int64_t max_msg, char *err, size_t errlen)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1;

    if (s == NULL) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    /* IMMEDIATE: queue nothing for a parent we are not connected to; we resend ourselves. */
    if (s_common(s, max_msg) != 0 || zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_public, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp->public_z85, KEYS_Z85_LEN) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp->secret_z85, KEYS_Z85_LEN) != 0) {
        snprintf(err, errlen, "CURVE client options: %s", zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (zmq_connect(s, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

void link_close(void **sockp)
{
    if (sockp == NULL || *sockp == NULL)
        return;
    zmq_close(*sockp);
    *sockp = NULL;
}
