/* scan_control: see scan_control.h. A frame_reader does the framing, wire_unpack the size and
 * count checks; anything the reader refuses closes the channel (the peer is our own manager,
 * so garbage means a bug or a dead peer, not something to resynchronise on). */
#include "scan/scan_control.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "util.h"

struct scan_control {
    struct bufferevent *bev;
    struct frame_reader rd;
    struct scan_control_handlers h;
    void *arg;
    bool closed;
    uint64_t dropped;
};

static void s_closed(scan_control_t *c, const char *why)
{
    if (c->closed)
        return;
    c->closed = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    log_info("control channel closed: %s", why);
    if (c->h.closed != NULL)
        c->h.closed(c->arg);
}

static void s_read_cb(struct bufferevent *bev, void *arg)
{
    scan_control_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[16384];
    const uint8_t *frame;
    size_t len;
    int n, r;

    while ((n = evbuffer_remove(in, buf, sizeof buf)) > 0)
        frame_reader_push(&c->rd, buf, (size_t)n);
    while (!c->closed && (r = frame_reader_next(&c->rd, &frame, &len)) != 0) {
        envelope_t *env;

        if (r < 0) {
            s_closed(c, "frame over the size limit");
            return;
        }
        env = wire_unpack(frame, len);
        if (env == NULL) {
            log_warn("control channel: undecodable envelope (%zu bytes) ignored", len);
            continue;
        }
        if (c->h.message != NULL)
            c->h.message(env, c->arg);
        wire_free(&env);
    }
}

static void s_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    s_closed(arg, (what & BEV_EVENT_EOF) ? "end of file"
                                         : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

scan_control_t *scan_control_new(struct event_base *base, int fd,
                                 const struct scan_control_handlers *h, void *arg)
{
    scan_control_t *c = xcalloc(1, sizeof *c);

    evutil_make_socket_nonblocking(fd);
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        log_err("control channel: cannot create bufferevent on fd %d", fd);
        free(c);
        return NULL;
    }
    frame_reader_init(&c->rd, FRAME_MAX);
    c->h = *h;
    c->arg = arg;
    bufferevent_setcb(c->bev, s_read_cb, NULL, s_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

void scan_control_free(scan_control_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    bufferevent_free((*cp)->bev);
    frame_reader_free(&(*cp)->rd);
    free(*cp);
    *cp = NULL;
}

int scan_control_send(scan_control_t *c, const envelope_t *env)
{
    struct evbuffer *out;
    uint8_t hdr[FRAME_HEADER_LEN];
    uint8_t *buf;
    size_t len;

    if (c == NULL || c->closed)
        return -1;
    out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) > SCAN_CONTROL_OUT_MAX) {
        if (c->dropped++ % 100 == 0) /* rate-limited: the manager is not reading */
            log_warn("control channel: manager not reading, %llu messages dropped",
                     (unsigned long long)c->dropped);
        return -1;
    }
    buf = wire_pack(env, &len);
    frame_header(hdr, (uint32_t)len);
    evbuffer_add(out, hdr, sizeof hdr);
    evbuffer_add(out, buf, len);
    free(buf);
    return 0;
}
