/* curl_loop: see curl_loop.h. */
#include "curl_loop.h"

#include <event2/event_struct.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct sock {
    struct event ev;
    bool added;
};

struct curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event timer;
    curl_loop_done_fn *done;
    void *arg;
    struct curl_peer peer;
};

static void s_check_done(curl_loop_t *l)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
        void *priv = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&priv);
        l->done(l->arg, priv, m->data.result);
    }
}

static void s_sock_event(evutil_socket_t fd, short what, void *arg)
{
    curl_loop_t *l = arg;
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;

    curl_multi_socket_action(l->multi, fd, flags, &running);
    s_check_done(l);
    if (running <= 0 && evtimer_pending(&l->timer, NULL))
        evtimer_del(&l->timer);
}

static int s_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    curl_loop_t *l = userp;
    struct sock *so = socketp;
    short kind;

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (so != NULL) {
            if (so->added)
                event_del(&so->ev);
            free(so);
        }
        curl_multi_assign(l->multi, fd, NULL);
        return 0;
    }
    if (so == NULL) {
        so = xcalloc(1, sizeof *so);
        curl_multi_assign(l->multi, fd, so);
    } else if (so->added) {
        event_del(&so->ev);
    }
    kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    event_assign(&so->ev, l->base, fd, kind, s_sock_event, l);
    event_add(&so->ev, NULL);
    so->added = true;
    return 0;
}

static void s_timer_event(evutil_socket_t fd, short what, void *arg)
{
    curl_loop_t *l = arg;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_check_done(l);
}

static int s_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    curl_loop_t *l = userp;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    (void)m;
    if (timeout_ms < 0)
        evtimer_del(&l->timer);
    else
        evtimer_add(&l->timer, &tv);
    return 0;
}

static size_t s_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
    struct curl_body *b = arg;
    size_t n = size * nmemb;

    if (b->len + n > b->max) {
        b->too_big = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

curl_loop_t *curl_loop_new(struct event_base *base, curl_loop_done_fn *done, void *arg)
{
    curl_loop_t *l;

    /* Reference-counted by libcurl: once per loop, undone by nobody (the process ends). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_err("curl_global_init failed");
        return NULL;
    }
    l = xcalloc(1, sizeof *l);
    l->base = base;
    l->done = done;
    l->arg = arg;
    if ((l->multi = curl_multi_init()) == NULL) {
        log_err("curl_multi_init failed");
        free(l);
        return NULL;
    }
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, s_sock_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    evtimer_assign(&l->timer, base, s_timer_event, l);
    return l;
}

void curl_loop_free(curl_loop_t **lp)
{
    if (lp == NULL || *lp == NULL)
        return;
    evtimer_del(&(*lp)->timer);
    curl_multi_cleanup((*lp)->multi); /* closes kept-alive connections (sockets removed inside) */
    free(*lp);
    *lp = NULL;
}

void curl_loop_add(curl_loop_t *l, CURL *easy) { curl_multi_add_handle(l->multi, easy); }

void curl_loop_remove(curl_loop_t *l, CURL *easy) { curl_multi_remove_handle(l->multi, easy); }

void curl_loop_set_peer(curl_loop_t *l, const struct curl_peer *peer)
{
    if (peer != NULL)
        l->peer = *peer;
    else
        memset(&l->peer, 0, sizeof l->peer);
}

CURL *curl_loop_easy(curl_loop_t *l, const char *url, long timeout_ms, void *priv,
                     struct curl_body *body, size_t max)
{
    CURL *e = curl_easy_init();

    if (e == NULL)
        fatal("curl_easy_init failed");
    body->max = max;
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (l->peer.pin[0] != '\0') {
        /* The pin is the trust anchor, as for component updates: no CA, no host name. */
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, l->peer.pin);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    }
    if (l->peer.bearer[0] != '\0') {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, l->peer.bearer);
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_PRIVATE, priv);
    return e;
}
